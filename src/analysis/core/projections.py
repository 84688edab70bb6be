"""Map projections of France, from their formulas: Lambert-93 and ETRS89-LAEA.

Both take longitude and latitude in degrees on the GRS80 ellipsoid (ETRS89 / RGF93, which
WGS84 coordinates match to the metre) and return metres.

- :func:`lambert93` — Lambert-93 (EPSG:2154), the conformal conic projection of France's
  official maps: two standard parallels 49° and 44° N, origin 46°30' N, 3° E, false easting
  700,000 m, false northing 6,600,000 m. Formulas of Snyder (1987), *Map Projections — A
  Working Manual*, USGS Professional Paper 1395, eqs. 15-7, 15-9, 14-15, 15-1 to 15-3
  (the ellipsoidal Lambert conformal conic with two standard parallels), as in IGN's note
  NT/G 71 (*Projection cartographique conique conforme de Lambert*, algorithms ALG0054).
- :func:`laea_europe` — ETRS89-LAEA (EPSG:3035), the Lambert azimuthal equal-area
  projection centred at 52° N, 10° E (false easting 4,321,000 m, false northing
  3,210,000 m) that Eurostat uses for areas: a planar area in it is the area on the
  ellipsoid. Snyder (1987), eqs. 3-12, 3-11, 14-15, 24-19, 24-20, 24-17, 24-18.

The tests compare both with PROJ's coordinates of the same points, to the millimetre.
"""

from __future__ import annotations

import math

import numpy as np

#: GRS80: semi-major axis (m) and flattening.
GRS80_A = 6_378_137.0
GRS80_F = 1 / 298.257222101
_E2 = GRS80_F * (2 - GRS80_F)
_E = math.sqrt(_E2)

# Lambert-93 (EPSG:2154)
_L93_LAT1, _L93_LAT2, _L93_LAT0, _L93_LON0 = 49.0, 44.0, 46.5, 3.0
_L93_X0, _L93_Y0 = 700_000.0, 6_600_000.0

# ETRS89-LAEA (EPSG:3035)
_LAEA_LAT0, _LAEA_LON0 = 52.0, 10.0
_LAEA_X0, _LAEA_Y0 = 4_321_000.0, 3_210_000.0


def _m(phi: np.ndarray | float) -> np.ndarray | float:
    """Snyder eq. 14-15: m = cos φ / sqrt(1 − e² sin² φ)."""
    return np.cos(phi) / np.sqrt(1 - _E2 * np.sin(phi) ** 2)


def _t(phi: np.ndarray | float) -> np.ndarray | float:
    """Snyder eq. 15-9: t = tan(π/4 − φ/2) / ((1 − e sin φ)/(1 + e sin φ))^(e/2)."""
    s = _E * np.sin(phi)
    return np.tan(np.pi / 4 - phi / 2) / ((1 - s) / (1 + s)) ** (_E / 2)


def _q(phi: np.ndarray | float) -> np.ndarray | float:
    """Snyder eq. 3-12: q = (1 − e²)[sin φ/(1 − e² sin² φ) − 1/(2e) ln((1 − e sin φ)/(1 + e sin φ))]."""
    s = np.sin(phi)
    return (1 - _E2) * (s / (1 - _E2 * s**2) - np.log((1 - _E * s) / (1 + _E * s)) / (2 * _E))


_phi1, _phi2, _phi0 = (math.radians(v) for v in (_L93_LAT1, _L93_LAT2, _L93_LAT0))
#: Cone constant n (eq. 15-8), F (eq. 15-10) and ρ0 (eq. 15-7 at the origin's latitude).
_L93_N = (math.log(_m(_phi1)) - math.log(_m(_phi2))) / (math.log(_t(_phi1)) - math.log(_t(_phi2)))
_L93_F = _m(_phi1) / (_L93_N * _t(_phi1) ** _L93_N)
_L93_RHO0 = GRS80_A * _L93_F * _t(_phi0) ** _L93_N


def lambert93(lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Lambert-93 (EPSG:2154) easting and northing, in metres, of longitude/latitude in degrees.

    ρ = a F t^n (eq. 15-7), θ = n (λ − λ0) (eq. 14-4), x = x0 + ρ sin θ,
    y = y0 + ρ0 − ρ cos θ (eqs. 14-1, 14-2).
    """
    phi = np.radians(np.asarray(lat, dtype=float))
    lam = np.radians(np.asarray(lon, dtype=float) - _L93_LON0)
    rho = GRS80_A * _L93_F * _t(phi) ** _L93_N
    theta = _L93_N * lam
    return _L93_X0 + rho * np.sin(theta), _L93_Y0 + _L93_RHO0 - rho * np.cos(theta)


_b_phi1 = math.radians(_LAEA_LAT0)
_QP = _q(math.pi / 2)
_BETA1 = math.asin(_q(_b_phi1) / _QP)
_RQ = GRS80_A * math.sqrt(_QP / 2)
_D = GRS80_A * _m(_b_phi1) / (_RQ * math.cos(_BETA1))


def laea_europe(lon: np.ndarray | float, lat: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """ETRS89-LAEA (EPSG:3035) easting and northing, in metres (an equal-area projection).

    β = asin(q/qp) (eq. 3-11), B = Rq sqrt(2/(1 + sin β1 sin β + cos β1 cos β cos(λ − λ0)))
    (eq. 24-19), x = x0 + B D cos β sin(λ − λ0) (eq. 24-17),
    y = y0 + (B/D)(cos β1 sin β − sin β1 cos β cos(λ − λ0)) (eq. 24-18), with
    D = a m1/(Rq cos β1) (eq. 24-20) and Rq = a sqrt(qp/2) (eq. 3-13).
    """
    phi = np.radians(np.asarray(lat, dtype=float))
    lam = np.radians(np.asarray(lon, dtype=float) - _LAEA_LON0)
    beta = np.arcsin(np.clip(_q(phi) / _QP, -1.0, 1.0))
    cos_b, sin_b = np.cos(beta), np.sin(beta)
    b = _RQ * np.sqrt(2 / (1 + math.sin(_BETA1) * sin_b + math.cos(_BETA1) * cos_b * np.cos(lam)))
    x = _LAEA_X0 + b * _D * cos_b * np.sin(lam)
    y = _LAEA_Y0 + (b / _D) * (math.cos(_BETA1) * sin_b - math.sin(_BETA1) * cos_b * np.cos(lam))
    return x, y


__all__ = ["GRS80_A", "GRS80_F", "lambert93", "laea_europe"]
