"""The shareable site: ``analysis render`` turns the executed notebooks into HTML.

From the output folder of ``analysis run`` (default ``reports/``, read through its
``manifest.json``):

- ``html/<id>.code.html``    every cell, code included (nbconvert's lab template);
- ``html/<id>.reader.html``  the reader version: no input cells and no prompts; cells tagged
  ``remove-cell`` are dropped, ``remove-input`` keep their output only, ``remove-output``
  keep their input only (Jupyter Book's tags);
- ``figures/<id>/figNN.png`` every ``image/png`` output, the bytes exactly as stored in the
  notebook, numbered in reading order;
- ``html/index.html``        every run with its parameters, status, duration and links.

Pages are self-contained: CSS inlined, images embedded as data URIs, no script loaded from a
network, except MathJax on pages whose Markdown holds math and mermaid.js on pages with a
diagram (both from nbconvert's CDN). Every value that comes
from data or parameters (names, parameter values, error messages) is HTML-escaped: the index
through a Jinja2 template with autoescaping, the page header through ``html.escape``.

``html/`` and ``figures/`` are built in a temporary folder beside them and swapped in whole,
so an interrupted render leaves the previous site as it was; the run lock (``.lock``) is
held while rendering.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import html
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

from analysis import __version__
from analysis.core import paths
from analysis.core.errors import AnalysisError
from analysis.runs.grid import format_value
from analysis.runs.lock import output_lock
from analysis.runs.manifest import (
    MANIFEST_NAME,
    STATUS_FAILED,
    STATUS_OK,
    STATUS_SKIPPED,
    read_manifest,
)
from analysis.runs.worker import describe_failure

CODE_SUFFIX = ".code.html"
READER_SUFFIX = ".reader.html"
INDEX_NAME = "index.html"

_PAGE_TEMPLATE = "analysis-page.html.j2"
_PAGE_TEMPLATE_SOURCE = r"""
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}
{%- if "widgets" in nb.metadata -%}{{ super() }}{%- endif -%}
{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}
{%- if resources.analysis_math -%}{{ super() }}{%- endif -%}
{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}
{%- if resources.analysis_mermaid -%}{{ super() }}{%- endif -%}
{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}
<link rel="icon" href="data:,">
<style type="text/css">
.analysis-run { max-width: 1100px; margin: 1em auto 0; padding: 0.6em 1em;
  font-family: var(--jp-ui-font-family, sans-serif); font-size: 0.9em;
  border: 1px solid #ccc; border-radius: 4px; background: #f7f7f7; }
.analysis-run dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.1em 1em; margin: 0.4em 0 0; }
.analysis-run dt { font-weight: bold; } .analysis-run dd { margin: 0; }
.analysis-failed { color: #a00; }
</style>
{%- endblock extra_css -%}
{%- block body_header -%}
{{ super() }}
{{ resources.analysis_header }}
{%- endblock body_header -%}
"""

_INDEX_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="icon" href="data:,">
<title>{{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto;
  max-width: 1200px; padding: 0 1em; color: #222; }
table { border-collapse: collapse; width: 100%; margin-bottom: 2em; }
th, td { text-align: left; vertical-align: top; padding: 0.35em 0.6em; border-bottom: 1px solid #ddd; }
th { background: #f3f3f3; }
code { font-size: 0.9em; }
.ok { color: #176f2c; } .failed { color: #a00; font-weight: bold; } .unknown { color: #666; }
.error { color: #a00; font-size: 0.85em; white-space: pre-wrap; margin: 0.3em 0 0; }
.meta { color: #555; font-size: 0.9em; }
ul.params { list-style: none; margin: 0; padding: 0; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">
{{ counts.total }} run{{ "s" if counts.total != 1 }}: {{ counts.ok }} ok, {{ counts.failed }} failed.
Package <code>analysis</code> {{ version }}.
{%- if batch.started_at %} Last batch {{ batch.started_at }}{% if batch.finished_at %} to {{ batch.finished_at }}{% endif %}{% if batch.grid %} from <code>{{ batch.grid }}</code>{% endif %}.{% endif %}
{%- if data_sha256 %} Data digest <code>{{ data_sha256[:12] }}</code> ({{ n_data_files }} files, listed in <a href="../{{ manifest_name }}">{{ manifest_name }}</a>).{% endif %}
</p>
{% for notebook, rows in groups %}
<h2><code>{{ notebook }}</code></h2>
<table>
<thead><tr><th>Run</th><th>Parameters</th><th>Status</th><th>Duration</th><th>Pages</th><th>Figures</th></tr></thead>
<tbody>
{% for r in rows %}
<tr id="{{ r.id }}">
<td>{{ r.name }}</td>
<td>{% if r.parameters %}<ul class="params">{% for k, v in r.parameters %}<li><code>{{ k }}</code> = {{ v }}</li>{% endfor %}</ul>{% else %}<span class="meta">defaults</span>{% endif %}</td>
<td class="{{ r.status_class }}">{{ r.status_label }}{% if r.error %}<pre class="error">{{ r.error }}</pre>{% endif %}</td>
<td>{{ r.duration }}</td>
<td>{% if r.reader %}<a href="{{ r.reader }}">reader</a> · <a href="{{ r.code }}">with code</a>{% endif %}{% if r.ipynb %}{% if r.reader %} · {% endif %}<a href="{{ r.ipynb }}">.ipynb</a>{% endif %}</td>
<td>{% for f in r.figures %}<a href="{{ f.href }}">{{ f.label }}</a>{% if not loop.last %} {% endif %}{% endfor %}</td>
</tr>
{% endfor %}
</tbody>
</table>
{% endfor %}
</body>
</html>
"""

_MATH = re.compile(r"\$[^$\n]+\$|\$\$|\\\(|\\\[|\\begin\{")


@dataclasses.dataclass
class SiteResult:
    index: Path
    pages: list[Path]
    figures: list[Path]

    def summary(self) -> str:
        return (
            f"rendered {len(self.pages)} pages and {len(self.figures)} figures; "
            f"index: {paths.shown(self.index)}"
        )


def _href(*parts: str) -> str:
    return "/".join(quote(p, safe=",=+") for p in parts)


def _exporter(reader: bool):
    """An nbconvert HTMLExporter (lab template) for the code or the reader variant."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    c = Config()
    c.HTMLExporter.embed_images = True  # Markdown images become data URIs too
    if reader:
        c.HTMLExporter.exclude_input = True
        c.HTMLExporter.exclude_input_prompt = True
        c.HTMLExporter.exclude_output_prompt = True
        c.TagRemovePreprocessor.enabled = True
        c.TagRemovePreprocessor.remove_cell_tags = {"remove-cell"}
        c.TagRemovePreprocessor.remove_input_tags = {"remove-input"}
        c.TagRemovePreprocessor.remove_all_outputs_tags = {"remove-output"}
    return HTMLExporter(
        config=c,
        template_name="lab",
        template_file=_PAGE_TEMPLATE,
        extra_loaders=[DictLoader({_PAGE_TEMPLATE: _PAGE_TEMPLATE_SOURCE})],
    )


def _params(parameters: dict) -> list[tuple[str, str]]:
    return [(str(k), format_value(parameters[k])) for k in sorted(parameters, key=str)]


def _page_header(entry: dict, variant: str, other_href: str) -> str:
    """The box at the top of a page: run, notebook, parameters, status; every value escaped."""
    e = html.escape
    rows = [
        ("Run", e(str(entry.get("name") or entry["id"]))),
        ("Notebook", e(str(entry.get("notebook", "")))),
    ]
    for k, v in _params(entry.get("parameters") or {}):
        rows.append((e(k), e(v)))
    status = str(entry.get("status", "unknown"))
    status_html = e(_status_label(status))
    if status == STATUS_FAILED and entry.get("error"):
        status_html = f'<span class="analysis-failed">{e(_status_label(status))}: {e(describe_failure(entry["error"]))}</span>'
    rows.append(("Status", status_html))
    other = "with code" if variant == "reader" else "reader version"
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    return (
        '<div class="analysis-run">'
        f'<a href="{INDEX_NAME}">All runs</a> · <a href="{e(other_href)}">{other}</a>'
        f"<dl>{dl}</dl></div>"
    )


def _status_label(status: str) -> str:
    return {
        STATUS_OK: "ok",
        STATUS_SKIPPED: "ok (up to date, not re-run)",
        STATUS_FAILED: "failed",
    }.get(status, status)


def extract_figures(nb: Any, dest: Path) -> list[Path]:
    """Write every image/png output of `nb` to dest/figNN.png, the bytes as stored (decoded)."""
    pngs = []
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []) or []:
            data = out.get("data") or {}
            if "image/png" in data:
                b64 = data["image/png"]
                pngs.append(base64.b64decode("".join(b64) if isinstance(b64, list) else b64))
    if not pngs:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    width = max(2, len(str(len(pngs))))
    paths = []
    for i, png in enumerate(pngs, start=1):
        p = dest / f"fig{i:0{width}d}.png"
        p.write_bytes(png)  # the whole folder is swapped in atomically by render_site
        paths.append(p)
    return paths


def _entries(out: Path) -> tuple[dict, list[dict]]:
    """The manifest and its run entries; without a manifest, the notebooks found on disk."""
    manifest = read_manifest(out)
    runs = manifest.get("runs")
    if isinstance(runs, dict) and runs:
        return manifest, [runs[k] for k in sorted(runs)]
    entries = []
    for sub, status in (("notebooks", "unknown"), ("failed", STATUS_FAILED)):
        for p in sorted((out / sub).glob("*.ipynb")):
            with contextlib.suppress(OSError, ValueError):
                meta = json.loads(p.read_text(encoding="utf-8")).get("metadata", {})
                pm = meta.get("papermill", {})
                entries.append(
                    {
                        "id": p.stem,
                        "name": p.stem,
                        "notebook": pm.get("input_path", ""),
                        "parameters": pm.get("parameters", {}),
                        "status": status,
                        "output": f"{sub}/{p.name}",
                    }
                )
    return {}, entries


def _swap_in(new: Path, target: Path) -> None:
    """Replace the folder `target` by `new` (two renames; the old one is removed after)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        old.rmdir()
        target.rename(old)
    try:
        new.rename(target)
    except BaseException:
        if old is not None:
            old.rename(target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def render_site(
    reports_dir: Path | str | None = None, *, progress: bool = True, stream=None
) -> SiteResult:
    """Render every run of the output folder to HTML, extract its figures, write the index.

    Raises AnalysisError when there is nothing to render, or BatchLockedError while a batch
    is writing to the folder.
    """
    import nbformat
    from jinja2 import Environment, StrictUndefined
    from tqdm.auto import tqdm

    out = Path(reports_dir) if reports_dir is not None else paths.reports_dir()
    if not out.is_dir():
        raise AnalysisError(f"{paths.shown(out)}/ does not exist: run `analysis run` first")
    log = stream or sys.stderr
    with output_lock(out, what="analysis render"):
        manifest, entries = _entries(out)
        if not entries:
            raise AnalysisError(
                f"nothing to render in {paths.shown(out)}/ (no {MANIFEST_NAME}, no executed "
                "notebook): run `analysis run` first"
            )
        exporters = {"code": _exporter(reader=False), "reader": _exporter(reader=True)}
        tmp = Path(tempfile.mkdtemp(prefix=".render-", dir=out))
        try:
            html_dir, fig_dir = tmp / "html", tmp / "figures"
            html_dir.mkdir()
            fig_dir.mkdir()
            pages: list[Path] = []
            figures: list[Path] = []
            rows = []
            tty = progress and hasattr(log, "isatty") and log.isatty()
            for entry in tqdm(entries, desc="render", unit="run", file=log, disable=not tty):
                rid = str(entry["id"])
                nb_path = out / entry["output"] if entry.get("output") else None
                row = _index_row(entry)
                if nb_path is not None and nb_path.is_file():
                    nb = nbformat.read(nb_path, as_version=4)
                    math = any(
                        c.cell_type == "markdown" and _MATH.search(c.source) for c in nb.cells
                    )
                    mermaid = any(
                        (c.cell_type == "markdown" and "```mermaid" in c.source)
                        or any(
                            "text/vnd.mermaid" in (o.get("data") or {})
                            for o in c.get("outputs", [])
                        )
                        for c in nb.cells
                    )
                    for variant, suffix in (("code", CODE_SUFFIX), ("reader", READER_SUFFIX)):
                        other = READER_SUFFIX if variant == "code" else CODE_SUFFIX
                        resources = {
                            "metadata": {"name": str(entry.get("name") or rid)},
                            "analysis_math": math,
                            "analysis_mermaid": mermaid,
                            "analysis_header": _page_header(entry, variant, _href(rid + other)),
                        }
                        body, _ = exporters[variant].from_notebook_node(nb, resources=resources)
                        page = html_dir / f"{rid}{suffix}"
                        page.write_text(body, encoding="utf-8")
                        pages.append(page)
                    figs = extract_figures(nb, fig_dir / rid)
                    figures.extend(figs)
                    row |= {
                        "reader": _href(rid + READER_SUFFIX),
                        "code": _href(rid + CODE_SUFFIX),
                        "ipynb": "../" + _href(*entry["output"].split("/")),
                        "figures": [
                            {"href": "../figures/" + _href(rid, f.name), "label": f.stem}
                            for f in figs
                        ],
                    }
                rows.append(row)

            groups: dict[str, list[dict]] = {}
            for row in rows:
                groups.setdefault(row["notebook"], []).append(row)
            env = Environment(
                autoescape=True, undefined=StrictUndefined, keep_trailing_newline=True
            )
            counts = {
                "total": len(rows),
                "ok": sum(r["status"] in (STATUS_OK, STATUS_SKIPPED) for r in rows),
                "failed": sum(r["status"] == STATUS_FAILED for r in rows),
            }
            index_html = env.from_string(_INDEX_TEMPLATE).render(
                title="French Tech capitals: executed notebooks",
                version=manifest.get("analysis_version", __version__),
                batch=manifest.get("batch") or {},
                data_sha256=manifest.get("data_sha256", ""),
                n_data_files=len(manifest.get("data_files") or {}),
                manifest_name=MANIFEST_NAME,
                counts=counts,
                groups=sorted(groups.items()),
            )
            (html_dir / INDEX_NAME).write_text(index_html, encoding="utf-8")
            _swap_in(html_dir, out / "html")
            _swap_in(fig_dir, out / "figures")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    index = out / "html" / INDEX_NAME
    final_pages = [out / "html" / p.name for p in pages]
    final_figs = [out / "figures" / p.parent.name / p.name for p in figures]
    result = SiteResult(index, final_pages, final_figs)
    return result


def _index_row(entry: dict) -> dict:
    status = str(entry.get("status", "unknown"))
    duration = entry.get("duration_s")
    error = describe_failure(entry["error"]) if entry.get("error") else ""
    return {
        "id": str(entry["id"]),
        "name": str(entry.get("name") or entry["id"]),
        "notebook": str(entry.get("notebook", "")),
        "parameters": _params(entry.get("parameters") or {}),
        "status": status,
        "status_label": _status_label(status),
        "status_class": {STATUS_OK: "ok", STATUS_SKIPPED: "ok", STATUS_FAILED: "failed"}.get(
            status, "unknown"
        ),
        "duration": f"{duration:.1f} s" if isinstance(duration, int | float) else "",
        "error": error,
        "reader": None,
        "code": None,
        "ipynb": None,
        "figures": [],
    }


__all__ = [
    "CODE_SUFFIX",
    "READER_SUFFIX",
    "SiteResult",
    "extract_figures",
    "render_site",
]
