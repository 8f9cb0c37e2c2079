"""The engine works out what a criterion's result reads, to say it cannot be trusted, only when some part
of the chart could not be fetched or read (perf26a: the demo chart's order-sign, read whole, worked it
out for every leaf, about 0.5 M of its 25 M instructions a call); the results are the same."""

from __future__ import annotations

import pytest

import service.engine.evaluate as evaluate
from tests.builders import determine, meeting_chart, statuses


@pytest.fixture
def reads_worked_out(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The tests whose reads `_unchecked` was asked for while the test ran."""
    asked: list[object] = []
    original = evaluate._unchecked

    def counted(tests: list[object], *args: object) -> object:
        asked.append(tests)
        return original(tests, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluate, "_unchecked", counted)
    return asked


def test_a_chart_read_whole_is_judged_without_working_out_what_each_result_reads(
    reads_worked_out: list[object],
) -> None:
    assert set(statuses(determine(meeting_chart())).values()) == {"met"}
    assert reads_worked_out == []


def test_a_chart_read_in_part_still_says_what_could_not_be_checked(reads_worked_out: list[object]) -> None:
    unread = {"AllergyIntolerance": "the FHIR server answered 503"}
    found = determine(meeting_chart(), unavailable=unread)
    assert "not-documented" in statuses(found).values()
    assert reads_worked_out
