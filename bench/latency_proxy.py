"""A loopback HTTP proxy that adds a fixed delay to every FHIR request (a stand-in for WAN latency).

Used by the hook-latency benchmark: against a FHIR server on the same machine every query takes a
few milliseconds and the server's own CPU is the bottleneck, which hides what the parallel fan-out
is for. Real EHR endpoints are tens to hundreds of milliseconds away.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

from service.demo.fhir_server import free_port


class LatencyProxy:
    def __init__(self, upstream: str, delay_ms: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay_ms / 1000
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        proxy = self
        session_local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self.forward(None)

            def do_POST(self) -> None:  # a FHIR batch
                self.forward(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

            def forward(self, posted: bytes | None) -> None:
                time.sleep(proxy.delay)
                session = getattr(session_local, "session", None) or requests.Session()
                session_local.session = session
                upstream_url = proxy.upstream + self.path[len("/fhir") :]
                kept = ("accept", "authorization", "content-type")
                headers = {k: v for k, v in self.headers.items() if k.lower() in kept}
                method = "GET" if posted is None else "POST"
                answer = session.request(method, upstream_url, headers=headers, data=posted, timeout=60)
                body = answer.content.replace(proxy.upstream.encode(), proxy.base_url.encode())
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/fhir+json"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
