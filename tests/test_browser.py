"""A real browser: headless Chromium driven through the DevTools Protocol, for the book's tests.

This module holds the harness (:class:`DevTools`, :class:`Tab`, the ``browser`` and ``tab``
fixtures) that ``tests/test_book.py`` uses to open the book from ``file://``, and a control
test proving that the checks do see a console error, an uncaught exception and an image
that fails to load. A page must load with no console error (console.error/assert, uncaught
exception, or a browser log entry of level error, such as a resource that fails to load).

Skipped, with the reason, when no Chromium is found (`chromium`, `chromium-browser` or
`google-chrome` on PATH). ANALYSIS_CHROMIUM=/path/to/browser picks the binary instead; a path
that does not exist (ANALYSIS_CHROMIUM=/nonexistent) exercises the skip. `.ci/run` installs
the Debian package `chromium` so that this test runs in CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM_ENV = "ANALYSIS_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
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
        "--no-proxy-server",  # the book opens from file://; nothing is fetched
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


# --------------------------------------------------------------------------- the control


def test_the_checks_do_see_errors(tab, tmp_path):
    """A control: a page with a console error, an uncaught exception and a missing image."""
    page = tmp_path / "broken.html"
    page.write_text(
        '<!DOCTYPE html><html lang="en"><head><link rel="icon" href="data:,"><title>control'
        '</title></head><body><img src="missing.png" alt="">'
        "<script>console.error('boom'); throw new Error('bang')</script></body></html>",
        encoding="utf-8",
    )
    tab.goto(page.as_uri())
    errors = tab.errors()
    assert any(e.startswith("console.error: boom") for e in errors), errors
    assert any(e.startswith("uncaught") and "bang" in e for e in errors), errors
    assert any("missing.png" in e for e in errors), errors
    assert not tab.eval("Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")
