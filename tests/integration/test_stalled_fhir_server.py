"""A FHIR server that stops answering must not slow the callers that do not use it: under
`idds-crd serve`, the calls naming it hold at most all but one of a worker's threads, the ones past
that are answered without asking it once it has kept the others waiting (service/fhir/server_share.py),
and every call answers within its deadline counted from its arrival, queueing for a thread included
(service/arrival.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from service.demo.fhir_server import free_port
from tests.hostile_support import HostileFhirServer
from tests.observability_support import value
from tests.support import SELECT_URL, TOKEN, as_queried, select_body, start_serve_process, with_fhir

pytestmark = pytest.mark.integration

DEADLINE = 3.0
STALLED_AFTER = 0.8
MARGIN = 1.0
STALLED_CALLS = 8


@pytest.fixture
def stalled_server() -> Iterator[str]:
    """A FHIR server whose port takes connections (the kernel's backlog) and never answers them."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/fhir"
    finally:
        listener.close()


@pytest.fixture(params=["never-answers", "drip", "observations_stall"])
def stalling_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A FHIR server that stalls: never answering at all; sending its answers a byte at a time (and
    refusing FHIR batches, so that each call's searches take all the server's query slots); or
    answering everything but the Observation searches."""
    if request.param == "never-answers":
        yield request.getfixturevalue("stalled_server")
        return
    with HostileFhirServer(request.param) as server:
        yield server.base_url


def served(tmp_path: Path, stalled: str, threads: int, deadline: float = DEADLINE) -> tuple[str, Any]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"auth:\n  required: false\n  open_fhir_servers: [{json.dumps(stalled)}]\n"
        f"store:\n  url: sqlite:///{tmp_path / 'audit.sqlite3'}\n"
        f"fhir:\n  deadline_seconds: {deadline}\n  stalled_after_seconds: {STALLED_AFTER}\n"
    )
    port = free_port()
    process = start_serve_process(config, port, tmp_path, "--workers", "1", "--threads", str(threads))
    return f"http://127.0.0.1:{port}", process


def timed_post(url: str, body: dict[str, Any]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    answer = requests.post(url + SELECT_URL, json=body, timeout=60)
    return answer, time.monotonic() - started


def post_together(url: str, body: dict[str, Any], calls: int) -> list[tuple[requests.Response, float]]:
    """`calls` posts of `body` at once, each answer with its time, once all are back."""
    answers: list[tuple[requests.Response, float]] = []
    callers = [threading.Thread(target=lambda: answers.append(timed_post(url, body))) for _ in range(calls)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    return answers


def test_calls_to_a_stalled_server_leave_a_thread_to_the_other_callers(
    tmp_path: Path, stalling_server: str
) -> None:
    """One worker with four threads; three calls wait on a FHIR server that stalls, then five more
    name it and a call that needs no FHIR request arrives behind them. Before, the fourth thread
    went to one of the five for a whole deadline and the last call waited behind it."""
    url, process = served(tmp_path, stalling_server, threads=4)
    stalled_body = with_fhir(as_queried(select_body()), TOKEN, stalling_server)
    prefetched = {k: v for k, v in select_body().items() if k not in ("fhirServer", "fhirAuthorization")}
    try:
        assert timed_post(url, prefetched)[0].status_code == 200  # the worker has built everything
        stalled: list[tuple[requests.Response, float]] = []
        callers = [
            threading.Thread(target=lambda: stalled.append(timed_post(url, stalled_body)))
            for _ in range(STALLED_CALLS)
        ]
        for caller in callers[:3]:
            caller.start()
        time.sleep(STALLED_AFTER + 0.3)  # the three have waited on unanswered requests that long
        for caller in callers[3:]:
            caller.start()
        time.sleep(0.2)
        other, waited = timed_post(url, prefetched)
        for caller in callers:
            caller.join()
        metrics = requests.get(url + "/metrics", timeout=10).text
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert other.status_code == 200 and other.json()["cards"]
    assert waited < MARGIN, f"the other caller waited {waited:.2f} s"
    assert [answer.status_code for answer, _ in stalled] == [200] * STALLED_CALLS
    slowest = max(seconds for _, seconds in stalled)
    assert slowest < DEADLINE + MARGIN, f"a call naming the stalled server took {slowest:.2f} s"
    details = [answer.json()["cards"][0]["detail"] for answer, _ in stalled]
    held_back = [d for d in details if "not asked: the FHIR server has left a request unanswered" in d]
    assert len(held_back) == STALLED_CALLS - 3 and all("could not be checked" in d for d in details)
    assert value(metrics, "idds_crd_fhir_calls_held_back_total") == len(held_back)


def test_a_slow_server_that_answers_keeps_every_call_whole(tmp_path: Path) -> None:
    """Six calls at once on four threads to a server answering each request after 0.4 s (under
    `stalled_after`, 0.8 s): none is held back or cut short. The first version of the share cut the
    calls past it short on a server not heard from lately. (Their queries share the worker's eight
    slots for that server, so the six take about 3 s: the deadline is 6 s.)"""
    with HostileFhirServer("slow") as slow:
        url, process = served(tmp_path, slow.base_url, threads=4, deadline=6.0)
        try:
            answers = post_together(url, with_fhir(as_queried(select_body()), TOKEN, slow.base_url), 6)
        finally:
            process.terminate()
            process.communicate(timeout=30)
    assert [answer.status_code for answer, _ in answers] == [200] * 6
    details = [answer.json()["cards"][0]["detail"] for answer, _ in answers]
    assert not [d for d in details if "could not be checked" in d or "not asked" in d], details[0]


def test_a_call_queued_for_a_thread_answers_within_its_deadline(tmp_path: Path, stalled_server: str) -> None:
    """One worker with one thread and three calls naming the stalled server at once: the two that
    queued behind the first have spent their deadline by the time the thread takes them, and are
    answered at once, saying so. Before, each waited a deadline of its own after its queueing: the
    third answered after three."""
    url, process = served(tmp_path, stalled_server, threads=1)
    try:
        answers = post_together(url, with_fhir(as_queried(select_body()), TOKEN, stalled_server), 3)
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert [answer.status_code for answer, _ in answers] == [200] * 3
    slowest = max(seconds for _, seconds in answers)
    assert slowest < DEADLINE + MARGIN, f"a call took {slowest:.2f} s"
    details = [answer.json()["cards"][0]["detail"] for answer, _ in answers]
    assert sum("no answer within the hook's time budget" in d for d in details) >= 2
