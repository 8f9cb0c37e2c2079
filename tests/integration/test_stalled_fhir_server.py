"""A FHIR server that stops answering, or answers so slowly that its calls hold their threads, must
not slow the callers that do not use it: under `idds-crd serve`, the calls naming it hold at most all
but one of a worker's threads, a call past that waits a moment for a place and is otherwise answered
without asking it (service/fhir/server_share.py), and every call answers within its deadline
counted from its arrival, queueing for a thread included (service/arrival.py)."""

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

from service.app import create_app
from service.demo.fhir_server import free_port
from service.encounters import _read as encounter_read
from service.fhir.client import FhirClient
from service.fhir.query_pool import FhirUse, QueryPool
from service.fhir.server_share import NOT_ASKED, NOT_ASKED_OTHERS
from service.settings import FhirSettings
from tests.builders import catalog
from tests.demo_support import packaged_sample
from tests.hostile_support import HostileFhirServer
from tests.observability_support import value
from tests.support import (
    SELECT_URL,
    TOKEN,
    as_queried,
    open_settings,
    post_json,
    select_body,
    start_serve_process,
    with_fhir,
)

pytestmark = pytest.mark.integration

DEADLINE = 3.0
SHARE_WAIT = 0.2
MARGIN = 1.0
CROWD = 8


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


@pytest.fixture(params=["never-answers", "drip", "observations_stall", "slow"])
def hogging_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """A FHIR server whose calls hold their threads for seconds: never answering at all; sending
    its answers a byte at a time (and refusing FHIR batches, so that each call's searches take all
    the server's query slots); answering everything but the Observation searches; or answering every
    request, each after a second (three calls at once then share its query slots to the deadline)."""
    if request.param == "never-answers":
        yield request.getfixturevalue("stalled_server")
        return
    with HostileFhirServer(request.param, slow_seconds=1.0) as server:
        yield server.base_url


def served(
    tmp_path: Path,
    fhir_server: str,
    threads: int,
    deadline: float = DEADLINE,
    share_wait: float = SHARE_WAIT,
    also: tuple[str, ...] = (),
) -> tuple[str, Any]:
    """`idds-crd serve` with one worker of `threads` threads, let ask `fhir_server` (and `also`)."""
    config = tmp_path / "config.yaml"
    config.write_text(
        f"auth:\n  required: false\n  open_fhir_servers: {json.dumps([fhir_server, *also])}\n"
        f"store:\n  url: sqlite:///{tmp_path / 'audit.sqlite3'}\n"
        f"fhir:\n  deadline_seconds: {deadline}\n  share_wait_seconds: {share_wait}\n"
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


def prefetched() -> dict[str, Any]:
    """A call that needs no FHIR request: every prefetch key filled, no fhirServer."""
    return {k: v for k, v in select_body().items() if k not in ("fhirServer", "fhirAuthorization")}


def test_calls_to_a_hogging_server_leave_a_thread_to_the_other_callers(
    tmp_path: Path, hogging_server: str
) -> None:
    """One worker with four threads; two calls wait on a FHIR server that holds them (its share),
    0.5 s later six more name it, and then a call that needs no FHIR request arrives behind them. The
    six find the share full for longer than its wait and are answered at once without asking; the
    last call is answered at once. Before there was a share, the free threads went to the six for a
    whole deadline (for a server that stalls) or for every call (for one slow but answering), and
    the last call waited behind them."""
    url, process = served(tmp_path, hogging_server, threads=4)
    hogged = with_fhir(as_queried(select_body()), TOKEN, hogging_server)
    try:
        assert timed_post(url, prefetched())[0].status_code == 200  # the worker has built everything
        crowd: list[tuple[requests.Response, float]] = []
        callers = [
            threading.Thread(target=lambda: crowd.append(timed_post(url, hogged))) for _ in range(CROWD)
        ]
        for caller in callers[:2]:
            caller.start()
        time.sleep(0.5)
        for caller in callers[2:]:
            caller.start()
        time.sleep(0.2)
        other, waited = timed_post(url, prefetched())
        for caller in callers:
            caller.join()
        metrics = requests.get(url + "/metrics", timeout=10).text
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert other.status_code == 200 and other.json()["cards"]
    assert waited < MARGIN, f"the other caller waited {waited:.2f} s"
    assert [answer.status_code for answer, _ in crowd] == [200] * CROWD
    slowest = max(seconds for _, seconds in crowd)
    assert slowest < DEADLINE + MARGIN, f"a call naming the server took {slowest:.2f} s"
    details = [answer.json()["cards"][0]["detail"] for answer, _ in crowd]
    held_back = [d for d in details if NOT_ASKED in d]
    assert len(held_back) == CROWD - 2 and all("could not be checked" in d for d in held_back)
    assert value(metrics, "idds_crd_fhir_calls_held_back_total") == len(held_back)


def test_two_hogging_servers_leave_a_thread_to_the_other_callers(tmp_path: Path, stalled_server: str) -> None:
    """Four threads; three calls name one stalled server and two another, then a call that needs no
    FHIR request arrives: the first server's calls hold two places and the second's one, the rest
    are answered "not asked", and the last call is answered at once. Before, each server's calls
    could hold all but one thread: the two servers together took all four, and the last call
    waited behind them for a deadline."""
    with HostileFhirServer("stall") as other:
        url, process = served(tmp_path, stalled_server, threads=4, also=(other.base_url,))
        try:
            assert timed_post(url, prefetched())[0].status_code == 200  # the worker has built everything
            crowd: list[tuple[requests.Response, float]] = []
            callers = [
                threading.Thread(
                    target=lambda server=server: crowd.append(
                        timed_post(url, with_fhir(as_queried(select_body()), TOKEN, server))
                    )
                )
                for server in [stalled_server] * 3 + [other.base_url] * 2
            ]
            for caller in callers:  # in this order: the stalled server's three, then the other's two
                caller.start()
                time.sleep(0.2)
            until = time.monotonic() + MARGIN
            while len(crowd) < 2 and time.monotonic() < until:  # the two kept out are answered at once
                time.sleep(0.02)
            light, waited = timed_post(url, prefetched())
            for caller in callers:
                caller.join()
        finally:
            process.terminate()
            process.communicate(timeout=30)
    assert light.status_code == 200 and light.json()["cards"]
    assert waited < MARGIN, f"the other caller waited {waited:.2f} s"
    details = [answer.json()["cards"][0]["detail"] for answer, _ in crowd]
    assert sorted(reason for d in details for reason in (NOT_ASKED, NOT_ASKED_OTHERS) if reason in d) == [
        NOT_ASKED,
        NOT_ASKED_OTHERS,
    ]


def test_a_call_that_needs_nothing_from_a_hogged_server_does_not_wait_for_its_share(
    tmp_path: Path, stalled_server: str
) -> None:
    """Two calls hold the stalled server's share (of four threads) when a call naming the same
    server arrives with everything prefetched: it asks the server nothing, so it takes no place and
    is answered at once, whole. Before, it waited for a place like a call about to ask (up to the
    2 s share wait here) and, given one, kept it from a call that needed it."""
    url, process = served(tmp_path, stalled_server, threads=4, share_wait=2.0)
    try:
        assert timed_post(url, prefetched())[0].status_code == 200  # the worker has built everything
        hogs = [
            threading.Thread(
                target=timed_post, args=(url, with_fhir(as_queried(select_body()), TOKEN, stalled_server))
            )
            for _ in range(2)
        ]
        for hog in hogs:
            hog.start()
        time.sleep(0.5)
        answer, waited = timed_post(
            url, with_fhir(packaged_sample("order-select-62362-demo-meets"), TOKEN, stalled_server)
        )
        for hog in hogs:
            hog.join()
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert answer.status_code == 200, answer.text
    assert waited < MARGIN, f"the prefetched call waited {waited:.2f} s"
    detail = answer.json()["cards"][0]["detail"]
    assert "could not be checked" not in detail and NOT_ASKED not in detail


def test_a_server_answering_calls_within_the_wait_is_asked_by_every_call(tmp_path: Path) -> None:
    """Twelve calls at once on four threads to a server answering at once: each call past the share
    finds a place within its wait (1 s here, for a loaded machine), so none is held back or cut
    short. A share that held back calls to a server no call had yet heard from lost some of these."""
    with HostileFhirServer("quiet") as quiet:
        url, process = served(tmp_path, quiet.base_url, threads=4, share_wait=1.0)
        try:
            answers = post_together(url, with_fhir(as_queried(select_body()), TOKEN, quiet.base_url), 12)
        finally:
            process.terminate()
            process.communicate(timeout=30)
    assert [answer.status_code for answer, _ in answers] == [200] * 12
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
    # a call that took the thread with a moment of its deadline left asked, and was not answered
    reasons = ("no answer within the hook's time budget", "the FHIR server did not answer")
    assert all(any(reason in d for reason in reasons) for d in details)


class HangingUp:
    """A FHIR server that takes each connection and never answers, noting when its client hangs up."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/fhir"
        self.hung_up: list[float] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self.stop.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._watch, args=(connection,), daemon=True).start()

    def _watch(self, connection: socket.socket) -> None:
        connection.settimeout(0.02)
        with connection:
            while not self.stop.is_set():
                try:
                    if connection.recv(1024) == b"":
                        self.hung_up.append(time.monotonic())
                        return
                except TimeoutError:
                    continue
                except OSError:
                    self.hung_up.append(time.monotonic())
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


def test_an_encounter_read_left_at_its_budget_ends_there_and_holds_no_connection() -> None:
    """review29f: the encounter hooks stop waiting for their Encounter at `fhir.encounter_read_seconds`,
    but the request ran on to the per-request timeout (2.5 s), holding its pool worker, the server's slot
    and its connection past the answer: 8 encounter-starts at once held all 8 of a server's slots, and the
    next call to that server (an order-sign) waited 1.9 s for one. The request now ends at the budget."""
    server = HangingUp()
    body = with_fhir(packaged_sample("encounter-start-demo-meets"), server=server.url)
    del body["prefetch"]["encounter"]  # read from the EHR, which never answers
    fhir = FhirSettings(deadline_seconds=3.0, timeout_seconds=2.5, encounter_read_seconds=0.2)
    app = create_app(open_settings(server.url, fhir=fhir), catalog())
    try:
        started = time.monotonic()
        answer = post_json(app.test_client(), "/cds-services/idds-crd-encounter-start", body)
        answered = time.monotonic() - started
        for _ in range(150):  # up to 3 s: the request's timeout, past which it ended before
            if server.hung_up:
                break
            time.sleep(0.02)
    finally:
        server.close()
    assert answer.status_code == 200 and answered < 1.5, answered
    assert server.hung_up and server.hung_up[0] - started < 1.0, [t - started for t in server.hung_up]


def test_an_encounter_read_held_back_is_counted_as_the_calls() -> None:
    """The bounded client the Encounter is read through counts a request it holds back on the call's
    client, which the held-back metric reads (service/pipeline.py)."""
    client = FhirClient("https://ehr.example.org/fhir", None, 2.5, deadline=time.monotonic() + 3.0)
    client.ask_through(lambda _deadline: NOT_ASKED)
    use = FhirUse()
    found = encounter_read("Encounter/e1", client, QueryPool(None), time.monotonic() + 0.2, use)
    assert found is None and use.token_use == "not-used"  # held back: nothing was sent
    assert client.refused == 1
