"""`analysis sirene fetch` against a real HTTP server on 127.0.0.1 (Range support, interrupted)."""

from __future__ import annotations

import hashlib
import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from analysis import cli
from analysis.core.errors import DataError, ParameterError
from analysis.data import register as sirene
from analysis.data.register.spec import ETABLISSEMENT_COLUMNS


class RangeHandler(BaseHTTPRequestHandler):
    """Serves server.data at any path; honours Range and If-Range; can cut the first transfer."""

    server: FixtureServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        srv = self.server
        srv.requests.append({k: v for k, v in self.headers.items()})
        data = srv.data
        start = 0
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if rng and srv.ranges and (if_range is None or if_range == srv.etag):
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("ETag", srv.etag)
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        body = data[start:]
        if srv.cut_after is not None:  # close the connection after N bytes, once
            body, srv.cut_after = body[: srv.cut_after], None
            self.close_connection = True
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, *args) -> None:
        pass


class FixtureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, data: bytes):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.data = data
        self.etag = '"v1"'
        self.ranges = True
        self.cut_after: int | None = None
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/files/StockEtablissement_utf8.zip"


def zip_bytes(payload: bytes) -> bytes:
    """A real zip (stored, not compressed) of a CSV with the register's header then `payload`:
    what a stock zip looks like to the download's checks."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        header = (",".join(ETABLISSEMENT_COLUMNS) + "\n").encode()
        zf.writestr("SYNTHETIC-TEST-DATA-StockEtablissement_utf8.csv", header + payload)
    return buf.getvalue()


@pytest.fixture
def server():
    data = zip_bytes(bytes(range(256)) * 1200 + b"SYNTHETIC-TEST-DATA fixture for fetch\n")
    srv = FixtureServer(data)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_interrupted_download_resumes_with_a_range_request(tmp_path, server):
    server.cut_after = 100_000
    with pytest.raises(
        DataError, match=rf"interrupted after 100,000 of {len(server.data):,} bytes.*resume"
    ):
        sirene.fetch(server.url, tmp_path, chunk=32_768)
    part = tmp_path / "StockEtablissement_utf8.zip.part"
    assert part.stat().st_size == 100_000
    assert not (tmp_path / "StockEtablissement_utf8.zip").exists()  # renamed only when complete

    got = sirene.fetch(server.url, tmp_path, chunk=32_768)
    assert server.requests[-1]["Range"] == "bytes=100000-"
    assert server.requests[-1]["If-Range"] == '"v1"'
    assert got.resumed_from == 100_000
    assert got.path.read_bytes() == server.data
    assert got.sha256 == sha(server.data)
    assert (tmp_path / "StockEtablissement_utf8.zip.sha256").read_text() == (
        f"{sha(server.data)}  StockEtablissement_utf8.zip\n"
    )
    assert (
        f"sha256: {sha(server.data)}"
        in (tmp_path / "StockEtablissement_utf8.zip.meta.yaml").read_text()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "StockEtablissement_utf8.zip",
        "StockEtablissement_utf8.zip.meta.yaml",
        "StockEtablissement_utf8.zip.sha256",
    ]


def test_changed_file_restarts_from_zero(tmp_path, server):
    server.cut_after = 50_000
    with pytest.raises(DataError):
        sirene.fetch(server.url, tmp_path)
    server.data = zip_bytes(b"new month " * 20_000)
    server.etag = '"v2"'  # If-Range no longer matches: the server sends the whole new file
    got = sirene.fetch(server.url, tmp_path)
    assert got.resumed_from == 0
    assert got.path.read_bytes() == server.data and got.sha256 == sha(server.data)


def test_server_without_range_support_starts_over(tmp_path, server):
    server.cut_after = 60_000
    with pytest.raises(DataError):
        sirene.fetch(server.url, tmp_path)
    server.ranges = False
    got = sirene.fetch(server.url, tmp_path)
    assert got.resumed_from == 0 and got.sha256 == sha(server.data)


def test_cli_fetch_prints_the_sha256(capsys, tmp_path, server):
    code = cli.main(["sirene", "fetch", "--url", server.url, "--dest", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sha(server.data) in out
    code = cli.main(
        ["sirene", "fetch", "--url", "http://127.0.0.1:9/x.zip", "--dest", str(tmp_path)]
    )
    _, err = capsys.readouterr()
    assert code == 2 and "cannot connect" in err and err.count("\n") == 1


def test_default_urls_are_the_official_files():
    assert set(sirene.DEFAULT_URLS) == {
        "StockEtablissement_utf8.zip",
        "StockEtablissement_utf8.parquet",
        "StockUniteLegale_utf8.zip",
        "StockUniteLegale_utf8.parquet",
    }
    for url in sirene.DEFAULT_URLS.values():
        assert url.startswith("https://www.data.gouv.fr/api/1/datasets/r/")
    with pytest.raises(ParameterError, match="not an http"):
        sirene.fetch("ftp://example.org/x", Path("/nonexistent"))
