"""A loopback HTTP server for tests: real sockets on 127.0.0.1, answers from a Python function.

Why real HTTP (not a mocked transport): the engines' own httpx code, headers, multipart bodies,
timeouts and retries run exactly as against a provider; only the host differs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Part:
    """One multipart form field: a file (with ``filename``) or a plain value."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8")


@dataclass
class Recorded:
    """A request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, Part]:
        return parse_multipart(self.headers.get("content-type", ""), self.body)


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Handler = Callable[[Recorded], Reply]


def parse_multipart(content_type: str, body: bytes) -> dict[str, Part]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    parts: dict[str, Part] = {}
    for item in message.iter_parts():
        name = item.get_param("name", header="content-disposition")
        payload = item.get_payload(decode=True) or b""
        parts[str(name)] = Part(payload, item.get_filename(), item.get_content_type() if item.get_filename() else None)
    return parts


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a timeout or cancel under test) is expected, not worth a traceback."""


class LoopbackServer:
    """Serve ``handler`` on an ephemeral port until ``close``; every request is kept in ``requests``."""

    def __init__(self, handler: Handler) -> None:
        self.requests: list[Recorded] = []
        self._handler = handler
        server = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body writes

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                server.requests.append(recorded)
                reply = server._handler(recorded)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = json.dumps(reply.json).encode() if reply.json is not None else reply.body
                try:
                    self.send_response(reply.status)
                    headers = {
                        "Content-Type": "application/json" if reply.json is not None else "application/octet-stream"
                    }
                    headers.update(reply.headers)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = _serve  # noqa: N815 - stdlib naming
            do_POST = _serve  # noqa: N815

        self._server = _QuietServer(("127.0.0.1", 0), _RequestHandler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
