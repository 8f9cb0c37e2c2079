"""Misbehaving FHIR servers for the outbound-limit tests: real threaded HTTP servers on 127.0.0.1.

Each answers every request the way its mode says, and records what it saw (connections accepted,
request paths, the most requests it answered at once, answers the client hung up on):

- `drip`: a valid searchset Bundle, status line and headers included, one byte every 100 ms
  (a full answer would take over a minute; per-read socket timeouts never fire);
- `stall`: accepts the connection, reads the request, never answers;
- `flood`: a 50 MB searchset Bundle streamed in chunks (no Content-Length to warn the client);
- `lie`: reads are answered with something other than what was asked for (`lie` picks what:
  a Bundle, another id, another type, or the resource of another patient); searches get an empty
  searchset;
- `quiet`: an empty searchset for every search and 404 for every read (for counting connections);
- `slow`: answers as `quiet` does, each request after `slow_seconds` (0.4 s unless given);
- `held`: answers as `quiet` does, but only once the test calls `release()`.

`tls_server(hostname)` is a well-behaved HTTPS server on loopback with a certificate for
`hostname` only, to show that TLS still checks the name when the connection goes to an address.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import select
import socket
import ssl
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from service.references import PATIENT_LINKS
from tests.support import running

DRIP_INTERVAL = 0.1
SLOW_SECONDS = 0.4
FLOOD_BYTES = 50 * 1024 * 1024
LIES = ("bundle", "other-id", "other-type", "other-patient")


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def lie_about(resource: dict[str, Any], lie: str) -> dict[str, Any]:
    """What a lying server answers instead of `resource` (the honest answer to a read)."""
    if lie == "bundle":
        return searchset([resource])
    if lie == "other-id":
        return {**resource, "id": f"{resource['id']}-other"}
    if lie == "other-type":
        return {"resourceType": "Patient", "id": resource["id"]}
    other = {"reference": "Patient/someone-else"}
    links = [link for link in PATIENT_LINKS if link in resource] or ["subject"]
    return {**resource, **{link: other for link in links}}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, owner: HostileFhirServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        request = super().get_request()
        with self.owner.lock:
            self.owner.connections += 1
        return request


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.requests.append(self.path)
        owner.opened(self.connection)
        try:
            getattr(self, f"_{owner.mode}")(owner)
        except OSError:
            owner.cut += 1  # the client gave up on the answer
        finally:
            owner.closed(self.connection)

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _cookie(self, owner: HostileFhirServer) -> None:
        """Answers like `quiet`, but hands out a session cookie naming the caller's token, and notes
        every Cookie header it is sent."""
        owner.cookies.append(self.headers.get("Cookie"))
        body = json.dumps(searchset([])).encode()
        self.send_response(200)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        self.send_header("Set-Cookie", f"SESSION={token}; Path=/; HttpOnly")
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _quiet(self, owner: HostileFhirServer) -> None:
        if "?" in self.path:
            self._json(200, searchset([]))
        else:
            self._json(404, {"resourceType": "OperationOutcome", "issue": []})

    def _gone(self, owner: HostileFhirServer, wait: float | None) -> bool:
        """Whether the client hung up (or the server is stopping), waiting up to `wait` seconds."""
        ends = None if wait is None else time.monotonic() + wait
        while not owner.stopping.is_set():
            left = 0.5 if ends is None else min(0.5, ends - time.monotonic())
            if left <= 0:
                return False
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True
        return True

    def _drip(self, owner: HostileFhirServer) -> None:
        body = json.dumps(searchset([])).encode() + b" " * 600
        head = "HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
        head += f"Content-Length: {len(body)}\r\n\r\n"
        for byte in head.encode() + body:
            if self._gone(owner, DRIP_INTERVAL):
                owner.cut += 1
                return
            self.wfile.write(bytes([byte]))

    def _held(self, owner: HostileFhirServer) -> None:
        while not owner.released.wait(0.05):
            if owner.stopping.is_set():
                return
        self._quiet(owner)

    def _observations_stall(self, owner: HostileFhirServer) -> None:
        """Answers like `quiet`, except Observation searches, which it never answers."""
        if "/Observation" in self.path:
            self._stall(owner)
        else:
            self._quiet(owner)

    def _slow(self, owner: HostileFhirServer) -> None:
        """Answers like `quiet`, each request after `slow_seconds`: slow, but answering."""
        if not self._gone(owner, owner.slow_seconds):
            self._quiet(owner)

    def _stall(self, owner: HostileFhirServer) -> None:
        if self._gone(owner, None):
            owner.cut += 1

    def _flood(self, owner: HostileFhirServer) -> None:
        entry = json.dumps({"resource": {"resourceType": "Condition", "id": "flood"}}).encode() + b","
        chunk = entry * (64 * 1024 // len(entry))
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pieces = [b'{"resourceType":"Bundle","type":"searchset","entry":[']
        pieces += [chunk] * (FLOOD_BYTES // len(chunk))
        pieces += [entry[:-1] + b"]}"]
        sent = 0
        try:
            for piece in pieces:
                if owner.stopping.is_set():
                    return
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                sent += len(piece)
            self.wfile.write(b"0\r\n\r\n")
        finally:
            with owner.lock:
                owner.most_sent = max(owner.most_sent, sent)

    def _lie(self, owner: HostileFhirServer) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = path.split("/")[-2:]
        honest = owner.resources.get("/".join(parts))
        if "?" in self.path or honest is None:
            self._quiet(owner)
        else:
            self._json(200, lie_about(honest, owner.lie))


class HostileFhirServer:
    """`with HostileFhirServer("drip") as server:`; `server.base_url` is its FHIR base."""

    def __init__(
        self,
        mode: str,
        resources: dict[str, dict[str, Any]] | None = None,
        lie: str = "bundle",
        slow_seconds: float = SLOW_SECONDS,
    ) -> None:
        self.mode = mode
        self.lie = lie
        self.slow_seconds = slow_seconds  # mode `slow`: how long each answer takes
        self.resources = resources or {}  # `Type/id` → the honest answer to a read (for `lie`)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.released = threading.Event()  # mode `held`: answer from now on
        self.connections = 0
        self.requests: list[str] = []
        self.cookies: list[str | None] = []  # the Cookie header of each request (mode "cookie")
        self.open = 0
        self.most_open = 0  # the most requests at once whose clients had not hung up
        self._answering: set[socket.socket] = set()
        self.most_sent = 0  # the most bytes one answer got out before the client hung up
        self.cut = 0  # answers the client hung up on
        self._server = _Server(self)
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def opened(self, connection: socket.socket) -> None:
        """A request is being answered. `most_open` counts those whose client is still there: a
        handler notices a hang-up only at its next look, and a client that has given up on a request
        (and so freed its slot for another) must not count twice."""
        with self.lock:
            self.open += 1
            self._answering.add(connection)
            waiting = sum(1 for c in self._answering if not _hung_up(c))
            self.most_open = max(self.most_open, waiting)

    def closed(self, connection: socket.socket) -> None:
        with self.lock:
            self.open -= 1
            self._answering.discard(connection)

    def release(self) -> None:
        self.released.set()

    def wait_until_open(self, count: int, timeout: float = 30.0) -> bool:
        """Wait (at most `timeout`) until `count` requests are being answered at once."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            if self.open >= count:
                return True
            time.sleep(0.01)
        return False

    def wait_until_idle(self, timeout: float = 30.0) -> bool:
        """Wait (at most `timeout`) until no request is being answered."""
        ends = time.monotonic() + timeout
        while time.monotonic() < ends:
            if self.open == 0:
                return True
            time.sleep(0.01)
        return False

    def __enter__(self) -> HostileFhirServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


def _hung_up(connection: socket.socket) -> bool:
    """Whether the client has closed `connection` (looked at once, without waiting)."""
    try:
        readable, _, _ = select.select([connection], [], [], 0)
        return bool(readable) and connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _self_signed(hostname: str, folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


class _Hello(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


@contextlib.contextmanager
def tls_server(hostname: str) -> Iterator[tuple[int, Path]]:
    """(port, CA file): an HTTPS server on 127.0.0.1 answering "ok", certified for `hostname`."""
    with tempfile.TemporaryDirectory(prefix="idds-crd-tls-") as folder:
        cert_file, key_file = _self_signed(hostname, Path(folder))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        with running(server):
            yield int(server.server_address[1]), cert_file
