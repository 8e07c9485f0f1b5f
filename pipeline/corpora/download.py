"""Resumable, checksum-verified HTTP downloads.

Nothing is accepted blindly, pinned sha256 or not: an HTML page (content type, or a body that starts like one) is
refused as an error page, the body must have the length the server announced, and a resumed `.part` is resumed
only when the server proves the file unchanged (`If-Range` with the ETag or Last-Modified of the first response,
kept beside the part in `<name>.part.json`); otherwise the download restarts from zero. Without a pinned sha256,
a lock file (`lock=`; the stages use `downloads.lock.json` at the repository root, meant to be committed)
records the sha256 of the first good download of each URL (trust on first use), and every later run verifies
against it, so a file changed upstream stops the fetch naming the URL and both hashes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests
from tqdm import tqdm

from pipeline.shards import file_sha256

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 60.0
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body")
DOWNLOADS_LOCK = "downloads.lock.json"  # the stages' lock file, at the repository root (commit it)
_LOCK_GUARD = threading.Lock()  # the flow downloads in threads; one lock-file update at a time
_CONTENT_RANGE_RE = re.compile(r"^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$")


class DownloadError(RuntimeError):
    """A download failed for good; the message says how to place the file by hand."""


class ChecksumError(ValueError):
    """A file's sha256 differs from the expected one."""


class _TransientError(Exception):
    """A failure worth retrying (5xx, 429, truncated body, unusable partial file)."""


class _FatalHTTPError(Exception):
    """An HTTP status that retrying will not fix (4xx)."""


_RETRYABLE = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    _TransientError,
)


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    lock: Path | None = None,
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, resuming partial downloads and verifying `sha256`.

    Without `sha256`, the sha256 recorded for `url` in the `lock` file (when given) is expected instead; when the
    lock has none yet, the first good download's is recorded there. `retries` is the number of extra attempts
    after the first one. Returns `dest`. Raises ChecksumError on a checksum mismatch and DownloadError when the
    file cannot be fetched (or the server sends an HTML page instead of it).
    """
    dest = Path(dest)
    pinned = sha256.lower() if sha256 else None
    expected = pinned or (locked_sha256(lock, url) if lock is not None else None)
    source = "" if pinned or expected is None else f" (recorded in {lock} on the first download)"
    if dest.exists():
        _check_existing(url, dest, expected, source)
    else:
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        _fetch_with_retries(url, dest, part, pinned, retries, backoff_s, timeout_s, chunk_size, progress)
        if expected is not None:
            _verify_part(url, part, expected, source)
        os.replace(part, dest)
        _validators_path(part).unlink(missing_ok=True)
        log.info("downloaded %s -> %s", url, dest)
    if expected is None and lock is not None:
        record_sha256(lock, url, file_sha256(dest), dest.stat().st_size)
    return dest


def _check_existing(url: str, dest: Path, expected: str | None, source: str) -> None:
    if expected is None:
        log.info("%s already present (no checksum given, not verified)", dest)
        return
    actual = file_sha256(dest)
    if actual != expected:
        raise ChecksumError(
            f"{dest} (from {url}) already exists but its sha256 is {actual}, expected {expected}{source}; "
            f"delete it to re-download it from {url}, or replace it with the correct file"
        )
    log.info("%s already present (sha256 verified)", dest)


def _verify_part(url: str, part: Path, expected: str, source: str = "") -> None:
    actual = file_sha256(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        _validators_path(part).unlink(missing_ok=True)
        changed = "; the file changed upstream since it was first downloaded" if source else ""
        raise ChecksumError(
            f"checksum mismatch for {url}: expected sha256 {expected}{source}, got {actual}{changed}; "
            f"the partial file {part} was deleted"
        )


# ----------------------------------------------------------------------------------------- the lock file


def locked_sha256(lock: Path, url: str) -> str | None:
    """The sha256 recorded for `url` in the lock file `lock` (None when the file or the entry is absent)."""
    entry = _read_lock(Path(lock)).get(url)
    return entry["sha256"] if entry else None


def record_sha256(lock: Path, url: str, sha256: str, size: int) -> None:
    """Record the sha256 and size of `url`'s first good download in `lock` (trust on first use)."""
    lock = Path(lock)
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK_GUARD, _exclusive(lock.with_name(lock.name + ".guard")):
        entries = _read_lock(lock)
        if url in entries:
            return
        entries[url] = {"sha256": sha256, "size": size}
        tmp = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "files": dict(sorted(entries.items()))}, indent=2) + "\n")
        os.replace(tmp, lock)
    log.info("recorded sha256 %s of %s in %s (trust on first use)", sha256, url, lock)


@contextlib.contextmanager
def _exclusive(guard: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on `guard` (created when missing): processes that fetch corpora side by
    side (Prefect runs fetch tasks in parallel) must not lose each other's lock-file entries."""
    with open(guard, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _read_lock(lock: Path) -> dict[str, dict]:
    if not lock.is_file():
        return {}
    try:
        files = json.loads(lock.read_text(encoding="utf-8"))["files"]
        if not all(isinstance(e, dict) and re.fullmatch(r"[0-9a-f]{64}", e.get("sha256", "")) for e in files.values()):
            raise ValueError("an entry without a sha256")
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"download lock file {lock} is unreadable ({err}); expected "
                         '{"version": 1, "files": {url: {"sha256": ..., "size": ...}}}') from None
    return files


def _fetch_with_retries(
    url: str,
    dest: Path,
    part: Path,
    expected: str | None,
    retries: int,
    backoff_s: float,
    timeout_s: float,
    chunk_size: int,
    progress: bool,
) -> None:
    attempts = max(0, retries) + 1
    last_error: BaseException | None = None
    for attempt in range(attempts):
        try:
            _fetch_once(url, part, timeout_s, chunk_size, progress, pinned=expected is not None)
            return
        except _FatalHTTPError as exc:
            raise DownloadError(_by_hand_message(url, dest, expected, f"{exc}", attempt + 1)) from exc
        except _RETRYABLE as exc:
            last_error = exc
            if attempt + 1 < attempts:
                delay = min(backoff_s * 2**attempt, _MAX_BACKOFF_S)
                log.warning(
                    "download of %s failed (attempt %d/%d: %s); retrying in %.2fs",
                    url, attempt + 1, attempts, exc, delay,
                )
                time.sleep(delay)
        except requests.RequestException as exc:  # invalid URL, unsupported scheme, ...
            raise DownloadError(_by_hand_message(url, dest, expected, f"{exc}", attempt + 1)) from exc
    raise DownloadError(_by_hand_message(url, dest, expected, f"{last_error}", attempts)) from last_error


def _by_hand_message(url: str, dest: Path, expected: str | None, error: str, attempts: int) -> str:
    noun = "attempt" if attempts == 1 else "attempts"
    checksum = f" (expected sha256 {expected})" if expected else ""
    return (
        f"could not download {url} after {attempts} {noun} ({error}); "
        f"download it by hand and place it at {dest}{checksum}, then re-run"
    )


def _fetch_once(url: str, part: Path, timeout_s: float, chunk_size: int, progress: bool, pinned: bool) -> None:
    """One HTTP request; appends to `part` when the server honours the Range for the same file."""
    offset = part.stat().st_size if part.exists() else 0
    # identity: we want the bytes as stored, and Range offsets must refer to them
    headers = {"Accept-Encoding": "identity"}
    validator = _saved_validator(part, url) if offset else None
    if offset and validator is None and not pinned:
        log.info("%s: the partial file %s cannot be checked against the server's file (no ETag or Last-Modified "
                 "kept) and no sha256 is pinned; restarting from zero", url, part)
        part.unlink()
        offset = 0
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            headers["If-Range"] = validator  # the server sends the whole file (200) when it changed
    with requests.get(url, headers=headers, stream=True, timeout=timeout_s) as resp:
        if resp.status_code == 416 and offset:
            _handle_416(resp, part, offset)
            return
        _raise_for_status(resp)
        _refuse_html(resp.headers.get("Content-Type", ""), url)
        if resp.status_code == 206 and validator and _validator(resp) not in (None, validator):
            _restart(part)
            raise _TransientError(f"the file changed on the server (validator {_validator(resp)}, the partial "
                                  f"file has {validator}); restarting from zero")
        offset = _resume_offset(resp, part, offset)
        if offset == 0:
            _save_validators(part, url, resp)
        expected_len = _content_length(resp)
        total = offset + expected_len if expected_len is not None else None
        received = _stream_to(resp, part, offset, total, chunk_size, progress, url)
    if expected_len is not None and received != expected_len:
        raise _TransientError(f"body has {received} bytes, the server announced {expected_len} (Content-Length)")
    if part.stat().st_size == 0:
        _restart(part)
        raise _FatalHTTPError("the server sent an empty file")


def _refuse_html(content_type: str, url: str) -> None:
    kind = content_type.split(";")[0].strip().lower()
    if kind in _HTML_TYPES:
        raise _FatalHTTPError(f"the server sent an HTML page ({content_type}), not the file: an error or login "
                              f"page? Open {url} in a browser")


def _validator(resp: requests.Response) -> str | None:
    """The response's strong ETag, else its Last-Modified date (what `If-Range` accepts), else None."""
    etag = resp.headers.get("ETag")
    if etag and not etag.startswith("W/"):
        return etag
    return resp.headers.get("Last-Modified")


def _validators_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _save_validators(part: Path, url: str, resp: requests.Response) -> None:
    path = _validators_path(part)
    validator = _validator(resp)
    if validator is None:
        path.unlink(missing_ok=True)
        return
    path.write_text(json.dumps({"url": url, "validator": validator}) + "\n")


def _saved_validator(part: Path, url: str) -> str | None:
    try:
        saved = json.loads(_validators_path(part).read_text())
    except (OSError, ValueError):
        return None
    return saved.get("validator") if isinstance(saved, dict) and saved.get("url") == url else None


def _restart(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validators_path(part).unlink(missing_ok=True)


def _raise_for_status(resp: requests.Response) -> None:
    status = resp.status_code
    if status == 429 or status >= 500:
        raise _TransientError(f"HTTP {status}")
    if status >= 400:
        raise _FatalHTTPError(f"HTTP {status} {resp.reason}")


def _handle_416(resp: requests.Response, part: Path, offset: int) -> None:
    total = _parse_content_range(resp.headers.get("Content-Range"))[2]
    if total is None or total == offset:
        log.info("%s is already complete (server answered 416)", part)
        return
    # the part is longer than the remote file: it cannot be a prefix of it
    _restart(part)
    raise _TransientError(f"HTTP 416: partial file has {offset} bytes, remote has {total}; restarting")


def _resume_offset(resp: requests.Response, part: Path, offset: int) -> int:
    """Offset at which the response body starts; truncates `part` when restarting."""
    if resp.status_code == 206:
        start = _parse_content_range(resp.headers.get("Content-Range"))[0]
        if start == offset:
            return offset
        _restart(part)
        raise _TransientError(f"server resumed at byte {start}, expected {offset}; restarting")
    if offset:
        log.info("server ignored the Range request for %s; restarting from zero", resp.url)
    part.write_bytes(b"")
    return 0


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    match = _CONTENT_RANGE_RE.match((value or "").strip())
    if match is None:
        return None, None, None
    start, end, total = match.groups()
    as_int = lambda s: int(s) if s and s != "*" else None  # noqa: E731
    return as_int(start), as_int(end), as_int(total)


def _content_length(resp: requests.Response) -> int | None:
    try:
        return int(resp.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _stream_to(
    resp: requests.Response, part: Path, offset: int, total: int | None, chunk_size: int, progress: bool, url: str
) -> int:
    received = 0
    with open(part, "ab") as fh, tqdm(
        total=total,
        initial=offset,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=part.name.removesuffix(".part"),
        file=sys.stderr,
        disable=not progress,
        leave=False,
    ) as bar:
        for chunk in resp.iter_content(chunk_size=chunk_size):
            if offset == 0 and received == 0 and chunk.lstrip()[:16].lower().startswith(_HTML_STARTS):
                _restart(part)
                raise _FatalHTTPError(f"the server sent an HTML page, not the file: an error or login page? "
                                      f"Open {url} in a browser")
            fh.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received
