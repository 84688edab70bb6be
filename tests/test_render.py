"""`analysis render`: two HTML variants per run, figures as PNG, an escaped index."""

from __future__ import annotations

import base64
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from analysis.runs import site as render

from .test_batch import EVIL, QUICK_AIX, QUICK_EVIL, cli, executed_batch


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if "src" in a:
            self.srcs.append(a["src"])
        if tag == "link" and "href" in a:
            self.srcs.append(a["href"])
        self.classes.append(a.get("class") or "")


def parse(path: Path) -> Links:
    p = Links()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The executed batch of test_batch, copied and rendered once."""
    done = executed_batch(tmp_path_factory)
    out = tmp_path_factory.mktemp("site") / "reports"
    shutil.copytree(done["out"], out)
    assert cli(["render", "--reports", str(out)]) == 0
    return out


@pytest.mark.slow  # needs the executed batch of test_batch
def test_both_variants_exist_for_every_run(site):
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    for rid in manifest["runs"]:
        for suffix in (render.CODE_SUFFIX, render.READER_SUFFIX):
            page = site / "html" / f"{rid}{suffix}"
            assert page.is_file() and page.stat().st_size > 1000, page


@pytest.mark.slow  # needs the executed batch of test_batch
def test_the_reader_variant_has_no_input_cells(site):
    code = (site / "html" / f"{QUICK_AIX}{render.CODE_SUFFIX}").read_text(encoding="utf-8")
    reader = (site / "html" / f"{QUICK_AIX}{render.READER_SUFFIX}").read_text(encoding="utf-8")
    body = reader[reader.index("<main>") :]
    code_body = code[code.index("<main>") :]
    # the code variant shows the code cells and their prompts ...
    assert code_body.count("jp-InputArea-editor") == 7 and "subplots" in code_body
    # ... the reader shows none: every code cell is marked input-less, no editor, no prompt
    assert "jp-InputArea-editor" not in body and "jp-InputPrompt" not in body
    assert "subplots" not in body and "import" not in body
    cells = re.findall(r'class="jp-Cell jp-CodeCell[^"]*"', body)
    assert cells and all("jp-mod-noInput" in c for c in cells)
    # markdown and outputs remain; `remove-cell` is dropped, `remove-input` keeps its output
    assert "Quick fixture" in body and "territory: aix-marseille" in body
    assert "output without its code" in body and "internal note" not in body
    assert "internal note" in code_body  # the code variant is the complete record


@pytest.mark.slow  # needs the executed batch of test_batch
def test_pages_are_self_contained(site):
    for page in (site / "html").glob("*.html"):
        links = parse(page)
        external = [s for s in links.srcs if re.match(r"(https?:)?//", s)]
        assert external == [], (page.name, external)
        assert "cdnjs" not in page.read_text(encoding="utf-8")  # no MathJax, no mermaid
    reader = site / "html" / f"{QUICK_AIX}{render.READER_SUFFIX}"
    assert any(s.startswith("data:image/png;base64,") for s in parse(reader).srcs)


@pytest.mark.slow  # needs the executed batch of test_batch
def test_figures_are_the_notebook_png_bytes(site):
    nb = json.loads((site / "notebooks" / f"{QUICK_AIX}.ipynb").read_text(encoding="utf-8"))
    pngs = [
        base64.b64decode(o["data"]["image/png"])
        for c in nb["cells"]
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    figs = sorted((site / "figures" / QUICK_AIX).glob("*.png"))
    assert [f.name for f in figs] == ["fig01.png"]
    assert [f.read_bytes() for f in figs] == pngs
    assert pngs[0].startswith(b"\x89PNG\r\n\x1a\n")
    assert not (site / "figures" / "fails").exists()  # no figure, no folder


@pytest.mark.slow  # needs the executed batch of test_batch
def test_index_links_every_run_and_both_variants(site):
    index = site / "html" / "index.html"
    hrefs = parse(index).hrefs
    manifest = json.loads((site / "manifest.json").read_text(encoding="utf-8"))
    for rid, entry in manifest["runs"].items():
        for suffix in (render.READER_SUFFIX, render.CODE_SUFFIX):
            assert f"{rid}{suffix}" in hrefs, (rid, suffix)
        assert f"../{entry['output']}" in hrefs
    for h in hrefs:  # every link resolves to a file
        assert (index.parent / h.split("#")[0]).resolve().is_file(), h
    text = index.read_text(encoding="utf-8")
    assert text.count('class="failed"') == 1 and "ValueError: boom in the middle" in text
    assert text.count('class="ok"') == 2


@pytest.mark.slow  # needs the executed batch of test_batch
def test_names_from_parameters_are_escaped(site):
    index = (site / "html" / "index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in index and "<script" not in index
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in index
    for suffix in (render.CODE_SUFFIX, render.READER_SUFFIX):
        page = (site / "html" / f"{QUICK_EVIL}{suffix}").read_text(encoding="utf-8")
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page  # header and output
    assert EVIL not in index


@pytest.mark.slow  # needs the executed batch of test_batch
def test_render_replaces_the_site_whole(site, monkeypatch):
    # a second render gives the same pages and leaves no temporary folder behind
    before = {p.name: p.read_bytes() for p in (site / "html").iterdir()}
    (site / "html" / "stale.code.html").write_text("old", encoding="utf-8")
    result = render.render_site(site, progress=False)
    assert {p.name: p.read_bytes() for p in (site / "html").iterdir()} == before
    assert len(result.pages) == 6 and len(result.figures) == 2
    assert [p.name for p in site.iterdir() if p.name.startswith(".") and p.is_dir()] == []


def test_nothing_to_render_is_one_line(tmp_path, capsys):
    (tmp_path / "reports").mkdir()
    assert cli(["render", "--reports", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: nothing to render in") and "run `analysis run` first" in err
