"""A worker collects young objects less often once its app is built (service/startup_gc.py): a big
chart's call would otherwise spend its CPU walking what it still holds."""

from __future__ import annotations

import gc

import pytest

from service.startup_gc import YOUNG_COLLECTION_THRESHOLD, settle


def test_settle_raises_the_young_collection_threshold_and_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    done: list[str] = []
    monkeypatch.setattr(gc, "collect", lambda: done.append("collect"))  # not this test's heap
    monkeypatch.setattr(gc, "freeze", lambda: done.append("freeze"))
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        settle()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, 10, 10)
        assert YOUNG_COLLECTION_THRESHOLD > 700
        assert done == ["collect", "freeze"]
    finally:
        gc.set_threshold(*before)
