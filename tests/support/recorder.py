"""A real HTTP server on loopback that keeps every JSON body POSTed to it (webhook receivers)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class HttpRecorder:
    def __init__(self) -> None:
        self.received: list[tuple[str, Any]] = []
        self.status = 200
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with recorder._lock:
                    recorder.received.append((self.path, json.loads(body or b"null")))
                self.send_response(recorder.status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def bodies(self) -> list[Any]:
        with self._lock:
            return [body for _, body in self.received]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
