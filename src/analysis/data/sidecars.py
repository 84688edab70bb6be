"""The metadata beside every data file: ``<file>.meta.yaml``.

A raw file's sidecar records its origin (title, publisher, URL, dates, licence, citation),
its sha256 and the schema of its table; a derived table's sidecar records the inputs it was
built from. This module reads sidecars and nothing else; it does not import pandas, so the
register path can use it before any count exists.
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from analysis.core.cache import cached_on_files
from analysis.core.checksums import sha256_file
from analysis.core.errors import ChecksumError, DataError, SidecarError
from analysis.core.formats import sniff

SIDECAR_SUFFIX = ".meta.yaml"
REQUIRED_SIDECAR_KEYS = (
    "source_id",
    "title",
    "publisher",
    "url",
    "date_published",
    "date_accessed",
    "licence",
    "citation",
    "sha256",
    "schema",
)


def sidecar_path(path: Path) -> Path:
    """``<file>.meta.yaml`` beside `path`."""
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_text_utf8(path: Path) -> str:
    """The file's text; a clear error if it is missing, empty or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise DataError(f"{path}: file is empty")
    kind = sniff(data[:64])
    if kind is not None:
        raise DataError(f"{path}: a {kind} file, not a UTF-8 text table")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(
            f"{path}, line {line}: not UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); "
            "save the file as UTF-8"
        ) from None
    return text.removeprefix("\ufeff")


MAX_SIDECAR_BYTES = 1_000_000  # the largest committed sidecar is about 2 KB


class _SidecarLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe subset, minus what a sidecar never needs and an attacker could use.

    LibYAML's parser when PyYAML has it (ten times faster than the pure-Python one: a data
    check reads every sidecar). Dates stay text, checked by :func:`read_sidecar` with the key
    named, instead of raising from deep in the parser on ``2024-02-30``. Anchors and aliases
    are refused by :func:`_refuse_aliases` before anything is composed.
    """


_SidecarLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _refuse_aliases(text: str) -> None:
    """Raise a YAMLError at the first anchor or alias (``&``, ``*``) of `text`.

    A few hundred bytes of nested aliases expand to gigabytes (the "billion laughs"); the
    events are read before any node is composed, so nothing is expanded.
    """
    for event in yaml.parse(text, Loader=_SidecarLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.YAMLError(
                f"line {event.start_mark.line + 1}: YAML anchors and aliases (& and *) are not "
                "allowed in a sidecar"
            )


def load_mapping(meta_path: Path) -> dict:
    """A YAML file that must hold a mapping (a sidecar); one-line errors otherwise.

    Refuses a file over :data:`MAX_SIDECAR_BYTES`, anchors and aliases; dates are read as
    text (see :class:`_SidecarLoader`). Each version of a file is parsed once (the cache is
    keyed on its path, size and mtime); the caller gets its own copy.

    Parameters
    ----------
    meta_path : pathlib.Path
        The YAML file.

    Returns
    -------
    dict
        Its mapping.

    Raises
    ------
    SidecarError
        When the file is too large, not valid YAML, holds an anchor or alias, or is not a
        mapping, naming the file.
    DataError
        When the file is missing, empty or not UTF-8.
    """
    return copy.deepcopy(_load_mapping(str(meta_path)))


@cached_on_files(lambda meta_path: [meta_path], maxsize=4096)
def _load_mapping(meta_path_text: str) -> dict:
    meta_path = Path(meta_path_text)
    if meta_path.is_file() and meta_path.stat().st_size > MAX_SIDECAR_BYTES:
        raise SidecarError(
            f"{meta_path}: {meta_path.stat().st_size:,} bytes, more than a sidecar can be "
            f"({MAX_SIDECAR_BYTES:,})"
        )
    text = read_text_utf8(meta_path)
    try:
        _refuse_aliases(text)
        meta = yaml.load(text, Loader=_SidecarLoader)  # noqa: S506 - a safe loader, stricter
    except yaml.YAMLError as e:
        raise SidecarError(f"{meta_path}: not valid YAML ({str(e).splitlines()[0]})") from None
    except ValueError as e:  # any value PyYAML's constructors cannot build
        raise SidecarError(f"{meta_path}: not valid YAML ({e})") from None
    if not isinstance(meta, dict):
        raise SidecarError(f"{meta_path}: expected a mapping of keys, got {type(meta).__name__}")
    return meta


#: Characters a URL in a sidecar may hold: RFC 3986's unreserved and reserved characters,
#: without the ones that end or open a Markdown link (``( ) [ ]``: percent-encode them as
#: %28 %29 %5B %5D). Whitespace, double quotes, ``<>``, backslashes and braces are never valid.
URL_SAFE = "-._~:/?#@!$&'*+,;=%"
_URL_CHARS = re.compile(rf"[A-Za-z0-9{re.escape(URL_SAFE)}]+")


def url_problem(url: object) -> str | None:
    """Why `url` is not a valid http(s) address for a sidecar, or None if it is."""
    if not isinstance(url, str):
        return f"is a {type(url).__name__}, not text"
    if not _URL_CHARS.fullmatch(url):
        bad = "".join(sorted({c for c in url if not _URL_CHARS.fullmatch(c)}))
        return f"holds character(s) {bad!r} that a URL may not hold (percent-encode them)"
    if re.search(r"%(?![0-9A-Fa-f]{2})", url):
        return "holds a % that is not a percent-escape %HH"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        return f"is not a valid URL ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        return "is not an http(s) address"
    if not host or host.startswith(".") or ".." in host:
        return "has no valid host"
    return None


def _date_problem(key: str, value: object) -> str | None:
    """Why a sidecar's date is not valid, or None: ``date_accessed`` is YYYY-MM-DD;
    ``date_published`` is free text (``unknown (2018)``), but a leading YYYY-MM or
    YYYY-MM-DD must be a real month or day."""
    if not isinstance(value, str):
        return f"{key} {value!r} is not text (quote it)"
    if key == "date_accessed" and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
        return f"{key} {value!r} is not a date YYYY-MM-DD"
    m = re.match(r"\s*(\d{4})-(\d{2})(?:-(\d{2}))?(?!\d)", value)
    if m:
        try:
            dt.date(int(m[1]), int(m[2]), int(m[3] or 1))
        except ValueError as e:
            return f"{key} {value!r} is not a real date ({e})"
    return None


#: Keys whose value must be non-blank text.
_TEXT_KEYS = ("source_id", "title", "publisher", "licence", "citation", "schema")


def read_sidecar(path: Path) -> dict:
    """The metadata of a data file, from its ``.meta.yaml`` sidecar, with every required key.

    Every required key is present and of the right type: ``title``, ``publisher`` and the
    other text keys are non-blank text (not a list, a mapping or spaces); the ``url`` is an
    ``http(s)`` address of RFC 3986 characters without ``()[]`` (:func:`url_problem`: a
    ``javascript:`` link, or a ``)`` closing a Markdown link early, would end up in the
    catalogue); the dates are valid (:func:`_date_problem`); the ``sha256`` is 64
    hexadecimal digits. Each error names the sidecar and the key.
    """
    meta_path = sidecar_path(Path(path))
    if not meta_path.is_file():
        raise SidecarError(f"{path}: no sidecar {meta_path.name} (each data file needs one)")
    meta = load_mapping(meta_path)
    missing = [
        k
        for k in REQUIRED_SIDECAR_KEYS
        if meta.get(k) is None or (isinstance(meta[k], str) and not meta[k].strip())
    ]
    if missing:
        raise SidecarError(f"{meta_path}: missing key(s) {', '.join(missing)}")
    for key in _TEXT_KEYS:
        if not isinstance(meta[key], str):
            raise SidecarError(f"{meta_path}: {key} must be text, not a {type(meta[key]).__name__}")
    problem = url_problem(meta["url"])
    if problem:
        raise SidecarError(f"{meta_path}: url {meta['url']!r} {problem}")
    for key in ("date_published", "date_accessed"):
        problem = _date_problem(key, meta[key])
        if problem:
            raise SidecarError(f"{meta_path}: {problem}")
    if not isinstance(meta["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", meta["sha256"]):
        raise SidecarError(f"{meta_path}: sha256 {meta['sha256']!r} is not 64 hexadecimal digits")
    return meta


def _file_and_sidecar(path: str, what: str) -> list[Path]:
    return [Path(path), sidecar_path(Path(path))]


@cached_on_files(_file_and_sidecar, maxsize=512)
def _verified(path: str, what: str) -> str:
    meta_path = sidecar_path(Path(path))
    expected = load_mapping(meta_path).get("sha256") if meta_path.is_file() else None
    if not expected:
        raise SidecarError(f"{path}: no sha256 recorded in {meta_path.name}")
    actual = sha256_file(Path(path))
    if actual != expected:
        fix = (
            "rebuild it with `analysis data build`"
            if what == "derived"
            else "raw files are never edited: restore it (git checkout) or record the change"
        )
        raise ChecksumError(
            f"{path}: sha256 {actual[:12]}... differs from the one its sidecar records "
            f"({str(expected)[:12]}...); {fix}"
        )
    return actual


def verify_sha256(path: Path, what: str = "raw") -> str:
    """Check a file against the sha256 its sidecar records, before anyone uses it.

    Cached on the file's and the sidecar's size and modification time, so that a reader can
    call it every time: a file is hashed again only when it changes.
    """
    return _verified(str(path), what)
