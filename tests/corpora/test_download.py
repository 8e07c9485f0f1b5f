from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from pipeline.corpora.download import ChecksumError, DownloadError, download, locked_sha256, record_sha256
from pipeline.shards import file_sha256
from pipeline.testing.http_server import LocalHTTPServer, unused_port_url

FAST = {"backoff_s": 0.01, "timeout_s": 5.0, "progress": False}
PAYLOAD = os.urandom(3 * 64 * 1024 + 123)  # a few chunks plus an odd tail
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture()
def served(tmp_path: Path) -> Path:
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.bin").write_bytes(PAYLOAD)
    return root


def _dest(tmp_path: Path) -> Path:
    return tmp_path / "out" / "nested" / "data.bin"


def _part(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(PAYLOAD)
    assert file_sha256(path, chunk_size=1000) == PAYLOAD_SHA


def test_fresh_download_with_correct_sha(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served)
    with server as url:
        result = download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    assert result == dest
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert server.request_count == 1
    assert server.requests[0].range is None


def test_wrong_sha_raises_and_leaves_nothing(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    wrong = "0" * 64
    with LocalHTTPServer(served) as url, pytest.raises(ChecksumError) as info:
        download(f"{url}/data.bin", dest, sha256=wrong, **FAST)
    message = str(info.value)
    assert wrong in message and PAYLOAD_SHA in message and "data.bin" in message
    assert not dest.exists()
    assert not _part(dest).exists()


def test_resumes_existing_part_with_range_request(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    half = len(PAYLOAD) // 2
    _part(dest).write_bytes(PAYLOAD[:half])
    server = LocalHTTPServer(served)
    with server as url:
        download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert [r.range for r in server.requests] == [f"bytes={half}-"]


def test_server_ignoring_range_restarts_from_zero(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(PAYLOAD[:1000])
    server = LocalHTTPServer(served, ignore_range=True)
    with server as url:
        download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.request_count == 1


def test_complete_part_and_416_is_treated_as_finished(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(PAYLOAD)
    server = LocalHTTPServer(served)
    with server as url:
        download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert not _part(dest).exists()
    assert [r.range for r in server.requests] == [f"bytes={len(PAYLOAD)}-"]


def test_dropped_connections_are_resumed(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served, drop_first_n=2, drop_after_bytes=50_000)
    with server as url:
        download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, chunk_size=4096, **FAST)
    assert dest.read_bytes() == PAYLOAD
    ranges = [r.range for r in server.requests]
    assert len(ranges) == 3
    assert ranges[0] is None
    # each retry continues where the previous body was cut
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    assert 0 < starts[0] < starts[1] < len(PAYLOAD)


def test_server_errors_are_retried(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served, fail_first_n=2, fail_status=500)
    with server as url:
        download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == PAYLOAD
    assert server.request_count == 3


def test_too_many_server_errors_give_download_error(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served, fail_first_n=10, fail_status=503)
    with server as url, pytest.raises(DownloadError, match="after 3 attempts"):
        download(f"{url}/data.bin", dest, retries=2, **FAST)
    assert server.request_count == 3
    assert not dest.exists()


def test_404_fails_fast(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served)
    with server as url, pytest.raises(DownloadError) as info:
        download(f"{url}/missing.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    message = str(info.value)
    assert f"{url}/missing.bin" in message
    assert str(dest) in message
    assert PAYLOAD_SHA in message
    assert server.request_count == 1
    assert not dest.exists()


def test_unreachable_server_says_place_by_hand(tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    url = f"{unused_port_url()}/data.bin"
    with pytest.raises(DownloadError) as info:
        download(url, dest, sha256=PAYLOAD_SHA, retries=2, **FAST)
    message = str(info.value)
    assert url in message
    assert f"place it at {dest}" in message
    assert "by hand" in message and PAYLOAD_SHA in message
    assert not dest.exists()


def test_existing_file_with_matching_sha_is_not_downloaded(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(PAYLOAD)
    server = LocalHTTPServer(served)
    with server as url:
        assert download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST) == dest
    assert server.request_count == 0


def test_existing_file_with_wrong_sha_is_kept_and_reported(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"user's own file")
    server = LocalHTTPServer(served)
    with server as url, pytest.raises(ChecksumError, match="delete it"):
        download(f"{url}/data.bin", dest, sha256=PAYLOAD_SHA, **FAST)
    assert dest.read_bytes() == b"user's own file"
    assert server.request_count == 0


def test_existing_file_without_sha_is_returned(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"anything")
    server = LocalHTTPServer(served)
    with server as url:
        assert download(f"{url}/data.bin", dest, **FAST) == dest
    assert server.request_count == 0


def test_an_html_page_is_refused_as_no_file_by_its_type_or_its_first_bytes(served: Path, tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served, content_type="text/html; charset=utf-8")
    with server as url, pytest.raises(DownloadError, match=r"sent an HTML page \(text/html; charset=utf-8\)"):
        download(f"{url}/data.bin", dest, retries=3, **FAST)
    assert server.request_count == 1 and not dest.exists() and not _part(dest).exists()
    (served / "page.bin").write_bytes(b"\n  <!DOCTYPE html><html><body>Quota exceeded</body></html>")
    with LocalHTTPServer(served) as url, pytest.raises(DownloadError, match="sent an HTML page, not the file"):
        download(f"{url}/page.bin", dest, **FAST)
    assert not dest.exists() and not _part(dest).exists()


def test_a_resumed_part_is_validated_with_if_range_and_restarts_when_the_file_changed(served: Path,
                                                                                        tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    server = LocalHTTPServer(served, drop_first_n=1, drop_after_bytes=50_000)
    with server as url:
        download(f"{url}/data.bin", dest, chunk_size=4096, **FAST)  # no sha256 pinned
    assert dest.read_bytes() == PAYLOAD
    first, second = server.requests
    assert second.range is not None and second.headers["if-range"].startswith('"')
    # a part left by an earlier version of the file: the server's If-Range check fails, so it sends it whole
    dest.unlink()
    _part(dest).write_bytes(b"old bytes of another version")
    server = LocalHTTPServer(served)
    with server as url:
        _part(dest).with_name("data.bin.part.json").write_text(
            json.dumps({"url": f"{url}/data.bin", "validator": '"old"'}))
        download(f"{url}/data.bin", dest, **FAST)
    assert dest.read_bytes() == PAYLOAD
    (request,) = server.requests
    assert request.headers["if-range"] == '"old"' and request.range == "bytes=28-"


def test_a_part_that_cannot_be_validated_restarts_from_zero_when_no_sha256_is_pinned(served: Path,
                                                                                    tmp_path: Path) -> None:
    dest = _dest(tmp_path)
    dest.parent.mkdir(parents=True)
    _part(dest).write_bytes(b"bytes of unknown origin")
    server = LocalHTTPServer(served)
    with server as url:
        download(f"{url}/data.bin", dest, **FAST)
    assert dest.read_bytes() == PAYLOAD and [r.range for r in server.requests] == [None]


def test_the_first_download_is_recorded_in_the_lock_and_a_changed_upstream_file_is_an_error(served: Path,
                                                                                             tmp_path: Path) -> None:
    dest, lock = _dest(tmp_path), tmp_path / "downloads.lock.json"
    with LocalHTTPServer(served) as url:
        download(f"{url}/data.bin", dest, lock=lock, **FAST)
        entries = json.loads(lock.read_text())["files"]
        assert entries == {f"{url}/data.bin": {"sha256": PAYLOAD_SHA, "size": len(PAYLOAD)}}
        download(f"{url}/data.bin", dest, lock=lock, **FAST)  # the cached file verifies against the lock
        (served / "data.bin").write_bytes(b"a new version upstream")
        dest.unlink()
        changed = hashlib.sha256(b"a new version upstream").hexdigest()
        with pytest.raises(ChecksumError, match=rf"checksum mismatch for {url}/data\.bin: expected sha256 "
                                                rf"{PAYLOAD_SHA} \(recorded in .*downloads\.lock\.json on the first "
                                                rf"download\), got {changed}; the file changed upstream"):
            download(f"{url}/data.bin", dest, lock=lock, **FAST)
        assert not dest.exists()
        dest.write_bytes(b"a new version upstream")
        with pytest.raises(ChecksumError, match=rf"already exists but its sha256 is {changed}, expected {PAYLOAD_SHA}"):
            download(f"{url}/data.bin", dest, lock=lock, **FAST)


def _record_many(lock: str, prefix: str, count: int, barrier) -> None:
    barrier.wait(30)  # both processes write at the same time
    for n in range(count):
        record_sha256(Path(lock), f"https://example.org/{prefix}/{n}", f"{n:064x}", n)


def test_processes_recording_downloads_side_by_side_keep_every_entry(tmp_path):
    import multiprocessing

    lock = tmp_path / "downloads.lock.json"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [context.Process(target=_record_many, args=(str(lock), prefix, 40, barrier)) for prefix in ("a", "b")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    for prefix in ("a", "b"):
        assert all(locked_sha256(lock, f"https://example.org/{prefix}/{n}") == f"{n:064x}" for n in range(40))
    assert not list(tmp_path.glob("*.tmp"))
