"""The main loop of `idds-crd serve`'s worker (service/whole_requests.py) on real sockets: a request
is handed to a thread only once whole, bytes arriving in pieces are collected, and what all
unfinished requests hold together stays within the worker's budget (503 beyond it, counted)."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from service.whole_requests import ArrivingConnection, WholeRequestWorker
from tests.observability_support import scrape, value

REQUEST = b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 200\r\n\r\n" + b"x" * 200
UNFINISHED = len(REQUEST) - 10


class LoopOnly(WholeRequestWorker):
    """The worker's main-loop part alone: no gunicorn arbiter, no thread pool (handed-over
    connections are kept in `handed`)."""

    def __init__(self, app: Flask, budget_bytes: int) -> None:  # gunicorn's Worker.__init__ not run
        self.cfg = SimpleNamespace(keepalive=5)
        self.poller = selectors.DefaultSelector()
        self.arriving = set()
        self.buffered = 0
        self.nr_conns = 0
        self.max_header_bytes = 8192
        self.budget_bytes = budget_bytes
        self.wsgi = app
        self.handed: list[ArrivingConnection] = []

    def enqueue_req(self, conn: Any) -> None:
        self.handed.append(conn)

    def connect(self) -> tuple[ArrivingConnection, socket.socket]:
        ours, theirs = socket.socketpair()
        self.nr_conns += 1
        conn = ArrivingConnection(self.cfg, ours, ("127.0.0.1", 1), ("127.0.0.1", 2), 10.0)
        self._await_request(conn)
        return conn, theirs

    def turn(self) -> None:
        for key, _ in self.poller.select(timeout=0.5):
            key.data(key.fileobj)


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def test_a_request_arriving_in_pieces_is_handed_over_once_whole(app: Flask, sockets: list) -> None:
    worker = LoopOnly(app, budget_bytes=1024)
    conn, client = worker.connect()
    sockets += [conn.sock, client]
    for piece in (REQUEST[:10], REQUEST[10:40], REQUEST[40:100], REQUEST[100:-1]):
        client.sendall(piece)
        worker.turn()
        assert worker.handed == []
    assert worker.buffered == len(REQUEST) - 1
    client.sendall(REQUEST[-1:])
    worker.turn()
    assert worker.handed == [conn] and bytes(conn.received) == REQUEST
    assert worker.buffered == 0 and worker.arriving == set()


def test_unfinished_requests_stay_within_the_budget(app: Flask, sockets: list) -> None:
    before = value(scrape(app), "idds_crd_requests_cut_total", reason="over-budget") or 0
    worker = LoopOnly(app, budget_bytes=len(REQUEST) + 20)
    first, first_client = worker.connect()
    second, second_client = worker.connect()
    sockets += [first.sock, first_client, second.sock, second_client]
    first_client.sendall(REQUEST[:UNFINISHED])
    worker.turn()
    second_client.sendall(REQUEST[:40])  # 30 bytes over the budget
    worker.turn()
    assert second_client.recv(100).startswith(b"HTTP/1.1 503 ")
    assert second_client.recv(1) == b""  # closed
    assert worker.arriving == {first} and worker.buffered == UNFINISHED and worker.nr_conns == 1
    assert value(scrape(app), "idds_crd_requests_cut_total", reason="over-budget") == before + 1
    first_client.sendall(REQUEST[UNFINISHED:])
    worker.turn()
    assert worker.handed == [first] and worker.buffered == 0
