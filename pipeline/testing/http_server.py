"""A tiny threaded HTTP file server on 127.0.0.1 for tests, with failure switches.

Example::

    server = LocalHTTPServer(tmp_path, fail_first_n=2)
    with server as base_url:
        download(f"{base_url}/file.bin", dest)
    assert server.request_count == 3
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]

    @property
    def range(self) -> str | None:
        return self.headers.get("range")


@dataclass
class FaultConfig:
    """Failure switches; counters refer to the order of requests (0-based)."""

    fail_first_n: int = 0  # answer `fail_status` to the first N requests
    fail_status: int = 500
    drop_first_n: int = 0  # for the first N requests (after failures) cut the body...
    drop_after_bytes: int | None = None  # ...after this many body bytes
    ignore_range: bool = False  # always answer 200 with the full body
    content_type: str = "application/octet-stream"
    etag: bool = True  # send a strong ETag (the file's sha256, shortened) and honour If-Range with it


@dataclass
class _State:
    root: Path
    faults: FaultConfig
    requests: list[RecordedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, request: RecordedRequest) -> int:
        with self.lock:
            self.requests.append(request)
            return len(self.requests) - 1


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep test output quiet

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, *, send_body: bool) -> None:
        state = self.server.state
        faults = state.faults
        headers = {k.lower(): v for k, v in self.headers.items()}
        index = state.record(RecordedRequest(self.command, self.path, headers))
        if index < faults.fail_first_n:
            self._send_empty(faults.fail_status)
            return
        path = self._resolve(state.root)
        if path is None:
            self._send_empty(404)
            return
        data = path.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'
        stale = "if-range" in headers and (not faults.etag or headers["if-range"] != etag)
        status, body, extra = self._select_range(data, headers.get("range"), faults.ignore_range or stale)
        self.send_response(status)
        self.send_header("Content-Type", faults.content_type)
        if faults.etag:
            self.send_header("ETag", etag)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "none" if faults.ignore_range else "bytes")
        self.send_header("Connection", "close")
        self.end_headers()
        if not send_body:
            return
        dropping = faults.drop_after_bytes is not None and index < faults.fail_first_n + faults.drop_first_n
        if dropping:
            self.wfile.write(body[: faults.drop_after_bytes])
            self.wfile.flush()
            self._abort()
            return
        self.wfile.write(body)

    def _resolve(self, root: Path) -> Path | None:
        rel = unquote(urlsplit(self.path).path).lstrip("/")
        path = (root / rel).resolve()
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            return None
        return path

    @staticmethod
    def _select_range(
        data: bytes, range_header: str | None, ignore_range: bool
    ) -> tuple[int, bytes, dict[str, str]]:
        total = len(data)
        match = _RANGE_RE.match(range_header or "")
        if ignore_range or match is None:
            return 200, data, {}
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else total - 1
        if start >= total:
            return 416, b"", {"Content-Range": f"bytes */{total}"}
        end = min(end, total - 1)
        return 206, data[start : end + 1], {"Content-Range": f"bytes {start}-{end}/{total}"}

    def _send_empty(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()

    def _abort(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: _State) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # aborted connections are expected in fault tests


class LocalHTTPServer:
    """Serve `directory` on 127.0.0.1 (random free port) in a background thread.

    Used as a context manager, it yields the base URL (no trailing slash).
    `requests` records every request received, in order.
    """

    def __init__(
        self,
        directory: Path | str,
        *,
        fail_first_n: int = 0,
        fail_status: int = 500,
        drop_first_n: int = 0,
        drop_after_bytes: int | None = None,
        ignore_range: bool = False,
        content_type: str = "application/octet-stream",
        etag: bool = True,
    ) -> None:
        faults = FaultConfig(fail_first_n, fail_status, drop_first_n, drop_after_bytes, ignore_range, content_type,
                             etag)
        self._state = _State(root=Path(directory), faults=faults)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def faults(self) -> FaultConfig:
        return self._state.faults

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("server is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        """Start serving; returns the base URL."""
        self._server = _Server(self._state)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def unused_port_url() -> str:
    """A base URL on 127.0.0.1 whose port nothing listens on (for 'offline' tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
