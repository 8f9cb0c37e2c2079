"""The table of connections each worker holds (service/balanced_worker.py `ConnectionShares`): a
worker may take a new connection only while it holds no more than the workers' average."""

from __future__ import annotations

from service.balanced_worker import ConnectionShares


def test_a_worker_takes_connections_only_while_within_its_share() -> None:
    shares = ConnectionShares(4)
    first, second = shares.claim(101), shares.claim(102)
    assert first is not None and second is not None and first != second
    assert shares.within_share(first) and shares.within_share(second)  # nobody holds anything yet
    shares.publish(first, 1)
    assert not shares.within_share(first) and shares.within_share(second)
    shares.publish(second, 1)
    assert shares.within_share(first) and shares.within_share(second)
    shares.publish(second, 3)
    assert shares.within_share(first) and not shares.within_share(second)


def test_an_exited_worker_leaves_its_slot_and_its_connections_behind() -> None:
    shares = ConnectionShares(2)
    gone, staying = shares.claim(201), shares.claim(202)
    assert gone is not None and staying is not None and shares.claim(203) is None  # all slots taken
    shares.publish(gone, 5)
    shares.publish(staying, 1)
    assert shares.within_share(staying)
    shares.free(201)  # its 5 connections went with it
    assert shares.within_share(staying)  # alone, it holds the average
    replacement = shares.claim(203)
    assert replacement == gone
    assert shares.within_share(replacement) and not shares.within_share(staying)
