"""A kept-alive connection is closed after its share of requests (service/serving.py
`ConnectionRecycling`, gunicorn's `pre_request` hook), counted per client address, in bounded memory;
and the workers' heartbeat file is kept in memory where the machine has /dev/shm."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from service import serving
from service.serving import ConnectionRecycling, ServeOptions


@dataclass
class Request:
    """What the hook reads and sets of gunicorn's request."""

    peer_addr: tuple[str, int]
    must_close: bool = False


def served(hook: ConnectionRecycling, peer: tuple[str, int]) -> bool:
    request = Request(peer)
    hook(None, request)
    return request.must_close


def test_each_connection_is_told_to_close_on_its_own_last_request() -> None:
    hook = ConnectionRecycling(3)
    one, other = ("10.0.0.1", 5000), ("10.0.0.1", 5001)
    closes = [served(hook, one), served(hook, other), served(hook, one), served(hook, one)]
    assert closes == [False, False, False, True]
    assert [served(hook, other), served(hook, other)] == [False, True]
    assert served(hook, one) is False  # a new connection from the same port starts afresh


def test_the_count_is_kept_for_so_many_connections_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "MAX_TRACKED_CONNECTIONS", 10)
    hook = ConnectionRecycling(1_000)
    for port in range(25):
        served(hook, ("10.0.0.2", port))
    assert len(hook._served) <= 10


def test_serve_installs_the_hook_with_its_limit() -> None:
    hook = ServeOptions().gunicorn_config()["pre_request"]
    assert isinstance(hook, ConnectionRecycling) and hook.limit == serving.REQUESTS_PER_CONNECTION


def test_the_heartbeat_file_is_kept_in_memory_where_it_can_be(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serving, "HEARTBEAT_DIR", "/dev/shm")
    monkeypatch.setattr(serving.os.path, "isdir", lambda path: path == "/dev/shm")
    assert ServeOptions().gunicorn_config()["worker_tmp_dir"] == "/dev/shm"
    monkeypatch.setattr(serving.os.path, "isdir", lambda path: False)
    assert ServeOptions().gunicorn_config()["worker_tmp_dir"] is None  # gunicorn's own default
