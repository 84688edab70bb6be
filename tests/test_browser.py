"""A real browser opens the rendered site: headless Chromium, driven through the DevTools Protocol.

Two runs of the default grid (the data catalogue and the Aix-Marseille territory report) are
executed into a temporary folder and rendered; the folder is served over HTTP on 127.0.0.1 and
Chromium opens the index and the pages of both runs. Every page must load with no console
error (console.error/assert, uncaught exception, or a browser log entry of level error, such as
a resource that fails to load) and with every image decoded; the index must list every run of
the manifest with links that all resolve; the reader pages must show no input cell.

Skipped, with the reason, when no Chromium is found (`chromium`, `chromium-browser` or
`google-chrome` on PATH). ANALYSIS_CHROMIUM=/path/to/browser picks the binary instead; a path
that does not exist (ANALYSIS_CHROMIUM=/nonexistent) exercises the skip. `.ci/run` installs
the Debian package `chromium` so that this test runs in CI.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from analysis.runs import batch, manifest
from analysis.runs import grid as grids
from analysis.runs import site as render

CHROMIUM_ENV = "ANALYSIS_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
CATALOGUE = "01-data-catalogue"
TERRITORY = "10-territory-report__capital=aix-marseille"
WAIT = 30.0  # seconds: the longest any single browser step may take before the test fails


def find_chromium() -> tuple[str | None, str]:
    """The browser to use, and the reason to skip when there is none."""
    override = os.environ.get(CHROMIUM_ENV)
    if override:
        found = shutil.which(override)
        return found, f"{CHROMIUM_ENV}={override!r} is not an executable"
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found, ""
    return None, (
        f"no Chromium on PATH (looked for {', '.join(CHROMIUM_NAMES)}); install the Debian "
        "package `chromium` (as .ci/run does) to run the browser test"
    )


CHROMIUM, SKIP_REASON = find_chromium()
pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)]


# --------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The two runs of the default grid, executed and rendered into a temporary folder.

    `only` takes a single glob and no glob selects exactly these two ids, so the two runs are
    copied from the default grid into a temporary grid (absolute notebook paths, the same
    parameters, hence the same ids) and executed in one batch, in parallel.
    """
    runs = {r.id: r for r in grids.load_grid(grids.default_grid())}
    missing = [rid for rid in (CATALOGUE, TERRITORY) if rid not in runs]
    assert not missing, f"runs {missing} are no longer in {grids.default_grid()}"
    grid = tmp_path_factory.mktemp("grid") / "runs.yaml"
    entries = [
        {"notebook": str(runs[rid].notebook), "parameters": runs[rid].parameters}
        for rid in (CATALOGUE, TERRITORY)
    ]
    grid.write_text(yaml.safe_dump(entries), encoding="utf-8")
    out = tmp_path_factory.mktemp("site") / "reports"
    result = batch.run_grid(grid, out_dir=out, workers=2, timeout=300, progress=False)
    assert [r.run.id for r in result.results] == [CATALOGUE, TERRITORY]
    assert not result.failed, result.failed
    render.render_site(out, progress=False)
    return out


class _QuietHandler(SimpleHTTPRequestHandler):
    requests: list[tuple[str, int]]  # set per server: (path, status) of every request

    def log_request(self, code="-", size="-"):
        self.requests.append((self.path, int(getattr(code, "value", code))))

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass


@pytest.fixture(scope="module")
def server(site) -> Iterator[tuple[str, list[tuple[str, int]]]]:
    """The output folder (html/, figures/, notebooks/, manifest.json) served on 127.0.0.1.

    The whole folder, not html/ alone: the index links to ../manifest.json, ../notebooks/ and
    ../figures/, as it does in reports/.
    """
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=site))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(WAIT)


# --------------------------------------------------------------------------- the browser


class DevTools:
    """A minimal Chrome DevTools Protocol client on the browser's websocket (flat sessions)."""

    def __init__(self, url: str):
        import websocket  # websocket-client, installed with Jupyter

        self._ws_errors = (websocket.WebSocketTimeoutException, TimeoutError)
        # No Origin header (Chromium refuses unlisted origins); never through a proxy.
        self.ws = websocket.create_connection(
            url, timeout=WAIT, suppress_origin=True, http_no_proxy=["127.0.0.1", "localhost"]
        )
        self.next_id = 0
        self.events: list[dict] = []

    def _receive(self, deadline: float, waiting_for: str) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"Chromium: no {waiting_for} within {WAIT:.0f} s")
        self.ws.settimeout(remaining)
        try:
            return json.loads(self.ws.recv())
        except self._ws_errors:
            raise AssertionError(f"Chromium: no {waiting_for} within {WAIT:.0f} s") from None

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg: dict = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        deadline = time.monotonic() + WAIT
        while True:
            reply = self._receive(deadline, f"answer to {method}")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise AssertionError(f"Chromium: {method} failed: {reply['error']}")
                return reply.get("result", {})
            if reply.get("sessionId"):  # an event of a tab (browser-wide ones are not used)
                self.events.append(reply)

    def wait_for(self, method: str, session: str) -> dict:
        deadline = time.monotonic() + WAIT
        for i, event in enumerate(self.events):
            if event["method"] == method and event.get("sessionId") == session:
                return self.events.pop(i)
        while True:
            event = self._receive(deadline, f"event {method}")
            if event.get("method") == method and event.get("sessionId") == session:
                return event
            if event.get("sessionId"):
                self.events.append(event)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[DevTools]:
    """A headless Chromium on a fresh profile; killed (its whole process group) afterwards."""
    profile = Path(tempfile.mkdtemp(prefix="analysis-chromium-"))
    log = (profile.parent / f"{profile.name}.log").open("w+b")
    args = [
        CHROMIUM,
        "--headless=new",
        "--no-sandbox",  # as root, and in containers without user namespaces
        "--disable-gpu",
        "--disable-dev-shm-usage",  # CI containers often have a 64 MB /dev/shm
        "--no-proxy-server",  # the site is on 127.0.0.1; nothing else is fetched
        # no background connection (they are refused on a closed network and add noise)
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "about:blank",
    ]
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    devtools = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + WAIT
        while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-3000:]
                state = f"exited with {proc.returncode}" if proc.poll() is not None else "hung"
                raise AssertionError(f"{CHROMIUM} {state} before opening DevTools:\n{tail}")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        devtools = DevTools(f"ws://127.0.0.1:{port}{path}")
        yield devtools
    finally:
        if devtools is not None:
            with contextlib.suppress(Exception):
                devtools.close()
        # the group holds Chromium and every helper process it started (zygote, renderers)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        log.close()
        Path(log.name).unlink(missing_ok=True)
        shutil.rmtree(profile, ignore_errors=True)


class Tab:
    """One browser tab: navigate, evaluate, and collect the page's errors."""

    def __init__(self, devtools: DevTools):
        self.dt = devtools
        self.target = devtools.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = devtools.send(
            "Target.attachToTarget", {"targetId": self.target, "flatten": True}
        )["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            devtools.send(f"{domain}.enable", session=self.session)

    def goto(self, url: str) -> None:
        self._drain()
        reply = self.dt.send("Page.navigate", {"url": url}, session=self.session)
        assert not reply.get("errorText"), f"{url}: {reply['errorText']}"
        self.dt.wait_for("Page.loadEventFired", self.session)
        assert self.eval("location.href") == url

    def eval(self, expression: str):
        reply = self.dt.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session,
        )
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def _drain(self) -> list[dict]:
        mine = [e for e in self.dt.events if e.get("sessionId") == self.session]
        self.dt.events = [e for e in self.dt.events if e.get("sessionId") != self.session]
        return mine

    def errors(self) -> list[str]:
        """Console errors and failed loads since the last navigation (none are filtered out)."""
        self.eval("0")  # a round trip: every event the page emitted before it is now received
        found = []
        for e in self._drain():
            method, p = e["method"], e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = [str(a.get("value", a.get("description", ""))) for a in p.get("args", [])]
                found.append(f"console.{p['type']}: {' '.join(args)}")
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                desc = d.get("exception", {}).get("description", "")
                found.append(f"uncaught: {d.get('text', '')} {desc}".strip())
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
        return found

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self.dt.send("Target.closeTarget", {"targetId": self.target})
        self._drain()


@pytest.fixture
def tab(browser) -> Iterator[Tab]:
    t = Tab(browser)
    try:
        yield t
    finally:
        t.close()


# --------------------------------------------------------------------------- the checks

_SAME_ORIGIN_LINKS = """
Array.from(document.links).map(a => a.href)
  .filter(h => h.startsWith(location.origin + "/"))
  .map(h => h.split("#")[0])
"""

_STATUSES = """
Promise.all(%s.map(h => fetch(h, {method: "HEAD"}).then(r => [h, r.status], e => [h, String(e)])))
"""

_IMAGES = """
Array.from(document.images).map(i => ({
  src: i.src.slice(0, 60), complete: i.complete, width: i.naturalWidth
}))
"""

# Input areas of code cells and prompts (lab template; `input_area` is the classic one's).
_INPUTS = """
document.querySelectorAll(
  ".jp-CodeCell .jp-InputArea, .jp-InputPrompt, .jp-OutputPrompt, .jp-Editor, .input_area"
).length
"""


def broken_links(tab: Tab) -> dict[str, object]:
    links = sorted(set(tab.eval(_SAME_ORIGIN_LINKS)))
    statuses = dict(tab.eval(_STATUSES % json.dumps(links)))
    return {h: s for h, s in statuses.items() if s != 200}


def failed_requests(requests: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The requests the server could not answer (every 4xx/5xx counts; the pages declare an
    empty icon, so Chromium does not ask for /favicon.ico)."""
    return [(p, s) for p, s in requests if s >= 400]


def test_index_lists_every_run_with_working_links(tab, server, site):
    base, requests = server
    start = len(requests)
    tab.goto(f"{base}/html/{render.INDEX_NAME}")
    assert tab.errors() == []

    man = json.loads((site / manifest.MANIFEST_NAME).read_text(encoding="utf-8"))
    rows = tab.eval("Array.from(document.querySelectorAll('tbody tr')).map(r => r.id)")
    assert sorted(rows) == sorted(man["runs"]) == sorted([CATALOGUE, TERRITORY])
    links = set(tab.eval(_SAME_ORIGIN_LINKS))
    for rid in rows:  # reader, with code, .ipynb and at least one figure for each run
        pages = {f"html/{rid}{render.READER_SUFFIX}", f"html/{rid}{render.CODE_SUFFIX}"}
        assert {f"{base}/{p}" for p in pages | {f"notebooks/{rid}.ipynb"}} <= links, links
        assert any(h.startswith(f"{base}/figures/{rid}/fig") for h in links), links
    assert broken_links(tab) == {}

    # follow the territory report's reader link as a reader would
    href = tab.eval(
        f"Array.from(document.querySelectorAll('tr[id=\"{TERRITORY}\"] a'))"
        ".find(a => a.textContent.trim() === 'reader').href"
    )
    assert href.endswith(f"/html/{TERRITORY}{render.READER_SUFFIX}")
    tab.goto(href)
    assert tab.errors() == []
    assert tab.eval("document.images.length") >= 1
    assert failed_requests(requests[start:]) == []


@pytest.mark.parametrize("variant", [render.READER_SUFFIX, render.CODE_SUFFIX])
@pytest.mark.parametrize("rid", [TERRITORY, CATALOGUE])
def test_page_loads_with_its_figures(tab, server, site, rid, variant):
    base, requests = server
    start = len(requests)
    tab.goto(f"{base}/html/{rid}{variant}")
    assert tab.errors() == []

    images = tab.eval(_IMAGES)
    n_figures = len(list((site / "figures" / rid).glob("*.png")))
    assert len(images) >= n_figures >= 1, (n_figures, images)
    assert all(i["complete"] and i["width"] > 0 for i in images), images
    assert tab.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    inputs = tab.eval(_INPUTS)
    if variant == render.READER_SUFFIX:
        assert inputs == 0, "the reader page shows input cells or prompts"
    else:
        assert inputs > 0  # the selector does find the input cells of the code page
    assert broken_links(tab) == {}  # "All runs" and the other variant, at least
    assert failed_requests(requests[start:]) == []


def test_the_checks_do_see_errors(tab, server, site):
    """A control: a page with a console error, an uncaught exception and a missing image."""
    base, requests = server
    control = site / "control"  # beside html/, linked from nowhere; removed afterwards
    control.mkdir()
    (control / "broken.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><link rel="icon" href="data:,"><title>control</title></head><body>'
        '<img src="missing.png" alt="">'
        "<script>console.error('boom'); throw new Error('bang')</script></body></html>",
        encoding="utf-8",
    )
    start = len(requests)
    try:
        tab.goto(f"{base}/control/broken.html")
        errors = tab.errors()
    finally:
        shutil.rmtree(control)
    assert any(e.startswith("console.error: boom") for e in errors), errors
    assert any(e.startswith("uncaught") and "bang" in e for e in errors), errors
    assert any(e.startswith("network") and "missing.png" in e for e in errors), errors
    assert not tab.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
    assert failed_requests(requests[start:]) == [("/control/missing.png", 404)]
