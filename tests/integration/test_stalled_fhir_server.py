"""A FHIR server that stops answering, or answers too slowly for calls to end in time, must not slow
the callers that do not use it: under `idds-crd serve`, the calls naming it hold at most all but one
of a worker's threads, the ones past that are answered without asking it unless it is known to keep
time (service/fhir/server_share.py), and every call answers within its deadline counted from its
arrival, queueing for a thread included (service/arrival.py)."""

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


def served(
    tmp_path: Path,
    stalled: str,
    threads: int,
    deadline: float = DEADLINE,
    stalled_after: float = STALLED_AFTER,
) -> tuple[str, Any]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"auth:\n  required: false\n  open_fhir_servers: [{json.dumps(stalled)}]\n"
        f"store:\n  url: sqlite:///{tmp_path / 'audit.sqlite3'}\n"
        f"fhir:\n  deadline_seconds: {deadline}\n  stalled_after_seconds: {stalled_after}\n"
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


def crowd_then_other(
    url: str, body: dict[str, Any], other_body: dict[str, Any], settle: float
) -> tuple[list[tuple[requests.Response, float]], requests.Response, float]:
    """Three posts of `body`; after `settle` seconds five more; 0.2 s later one of `other_body`, timed.
    The answers of the eight once all are back, and the other answer with its time."""
    crowd: list[tuple[requests.Response, float]] = []
    callers = [
        threading.Thread(target=lambda: crowd.append(timed_post(url, body))) for _ in range(STALLED_CALLS)
    ]
    for caller in callers[:3]:
        caller.start()
    time.sleep(settle)
    for caller in callers[3:]:
        caller.start()
    time.sleep(0.2)
    other, waited = timed_post(url, other_body)
    for caller in callers:
        caller.join()
    return crowd, other, waited


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
        # the three have waited on unanswered requests longer than STALLED_AFTER
        stalled, other, waited = crowd_then_other(url, stalled_body, prefetched, STALLED_AFTER + 0.3)
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
    """Once one call has had every answer in time, six calls at once on four threads to a server
    answering each request after 0.4 s (under `stalled_after`, 0.8 s): none is held back or cut
    short. (Their queries share the worker's eight slots for that server, so the six take about 3 s:
    the deadline is 6 s.)"""
    with HostileFhirServer("slow") as slow:
        url, process = served(tmp_path, slow.base_url, threads=4, deadline=6.0)
        body = with_fhir(as_queried(select_body()), TOKEN, slow.base_url)
        try:
            first = timed_post(url, body)[0].json()["cards"][0]["detail"]
            answers = post_together(url, body, 6)
        finally:
            process.terminate()
            process.communicate(timeout=30)
    assert [answer.status_code for answer, _ in answers] == [200] * 6
    details = [first] + [answer.json()["cards"][0]["detail"] for answer, _ in answers]
    assert not [d for d in details if "could not be checked" in d or "not asked" in d], details[0]


def test_calls_to_a_server_that_runs_them_out_of_time_leave_a_thread_to_the_other_callers(
    tmp_path: Path,
) -> None:
    """A server answering each request after 1 s never stalls (`stalled_after` is 1.5 s here), but
    three calls at once share its eight query slots and run out of their 2.5 s. Four such calls at
    once on four threads: the fourth, past the share, is not sent, since no call of this worker has
    yet had the server's answers in time. Then three calls, five more and a call needing no FHIR
    request: the five are not sent, and that call is answered at once. Before, a server answering
    every request was never held back: the fourth thread went to one of the five, and the last
    call waited about two seconds behind it."""
    with HostileFhirServer("slow", slow_seconds=1.0) as slow:
        url, process = served(tmp_path, slow.base_url, threads=4, deadline=2.5, stalled_after=1.5)
        body = with_fhir(as_queried(select_body()), TOKEN, slow.base_url)
        prefetched = {k: v for k, v in select_body().items() if k not in ("fhirServer", "fhirAuthorization")}
        try:
            assert timed_post(url, prefetched)[0].status_code == 200  # the worker has built everything
            first_wave = post_together(url, body, 4)
            second_wave, other, waited = crowd_then_other(url, body, prefetched, 0.3)
        finally:
            process.terminate()
            process.communicate(timeout=30)
    assert other.status_code == 200 and other.json()["cards"]
    assert waited < MARGIN, f"the other caller waited {waited:.2f} s"
    answers = first_wave + second_wave
    assert [answer.status_code for answer, _ in answers] == [200] * 12
    slowest = max(seconds for _, seconds in answers)
    assert slowest < 2.5 + MARGIN, f"a call naming the slow server took {slowest:.2f} s"
    first = [answer.json()["cards"][0]["detail"] for answer, _ in first_wave]
    second = [answer.json()["cards"][0]["detail"] for answer, _ in second_wave]
    assert sum("which has not yet answered one in time" in d for d in first) == 1
    assert sum("not asked:" in d for d in second) == 5
    assert all("could not be checked" in d for d in first + second if "not asked:" in d)


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
    # a call that took the thread with a moment of its deadline left asked, and was not answered
    reasons = ("no answer within the hook's time budget", "the FHIR server did not answer")
    assert all(any(reason in d for reason in reasons) for d in details)
