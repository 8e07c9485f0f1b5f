"""Resumable, checksum-verified HTTP downloads."""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from pathlib import Path

import requests
from tqdm import tqdm

from pipeline.shards import file_sha256

log = logging.getLogger(__name__)

_MAX_BACKOFF_S = 60.0
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
    retries: int = 5,
    backoff_s: float = 1.0,
    timeout_s: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
) -> Path:
    """Download `url` to `dest`, resuming partial downloads and verifying `sha256`.

    `retries` is the number of extra attempts after the first one. Returns `dest`.
    Raises ChecksumError on a checksum mismatch and DownloadError when the file
    cannot be fetched.
    """
    dest = Path(dest)
    expected = sha256.lower() if sha256 else None
    if dest.exists():
        return _check_existing(url, dest, expected)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    _fetch_with_retries(url, dest, part, expected, retries, backoff_s, timeout_s, chunk_size, progress)
    if expected is not None:
        _verify_part(url, part, expected)
    os.replace(part, dest)
    log.info("downloaded %s -> %s", url, dest)
    return dest


def _check_existing(url: str, dest: Path, expected: str | None) -> Path:
    if expected is None:
        log.info("%s already present (no checksum given, not verified)", dest)
        return dest
    actual = file_sha256(dest)
    if actual != expected:
        raise ChecksumError(
            f"{dest} already exists but its sha256 is {actual}, expected {expected}; "
            f"delete it to re-download it from {url}, or replace it with the correct file"
        )
    log.info("%s already present (sha256 verified)", dest)
    return dest


def _verify_part(url: str, part: Path, expected: str) -> None:
    actual = file_sha256(part)
    if actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"checksum mismatch for {url}: expected sha256 {expected}, got {actual}; "
            f"the partial file {part} was deleted"
        )


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
            _fetch_once(url, part, timeout_s, chunk_size, progress)
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


def _fetch_once(url: str, part: Path, timeout_s: float, chunk_size: int, progress: bool) -> None:
    """One HTTP request; appends to `part` when the server honours the Range."""
    offset = part.stat().st_size if part.exists() else 0
    # identity: we want the bytes as stored, and Range offsets must refer to them
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with requests.get(url, headers=headers, stream=True, timeout=timeout_s) as resp:
        if resp.status_code == 416 and offset:
            _handle_416(resp, part, offset)
            return
        _raise_for_status(resp)
        offset = _resume_offset(resp, part, offset)
        expected_len = _content_length(resp)
        total = offset + expected_len if expected_len is not None else None
        received = _stream_to(resp, part, offset, total, chunk_size, progress)
    if expected_len is not None and received < expected_len:
        raise _TransientError(f"body truncated: got {received} of {expected_len} bytes")


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
    part.unlink(missing_ok=True)
    raise _TransientError(f"HTTP 416: partial file has {offset} bytes, remote has {total}; restarting")


def _resume_offset(resp: requests.Response, part: Path, offset: int) -> int:
    """Offset at which the response body starts; truncates `part` when restarting."""
    if resp.status_code == 206:
        start = _parse_content_range(resp.headers.get("Content-Range"))[0]
        if start == offset:
            return offset
        part.unlink(missing_ok=True)
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
    resp: requests.Response, part: Path, offset: int, total: int | None, chunk_size: int, progress: bool
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
            fh.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))
    return received
