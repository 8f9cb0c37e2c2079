"""The work of weighing removals against what they undo grows with the records and removals, not with their
product (dates33, s33: a 230 KB order-sign holding 495 refills and 495 removals dated to a year cost 7 s of
CPU, each removal weighed against each refill six times). Counted, not timed: how often a date's days are
read (`chart_days.days_written`)."""

from __future__ import annotations

import pytest

import service.engine.chart_days as chart_days
import service.engine.removals as removals
from tests.builders import determine, meeting_chart, procedure


def _dated(i: int, shape: str) -> str:
    return {
        "year": "2023",
        "month": "2023-02",
        "day": f"{2000 + i // 300}-{1 + i % 12:02d}-{1 + i % 28:02d}",
    }[shape]


@pytest.mark.parametrize("shape", ["year", "month", "day"])
def test_weighing_reads_each_date_a_number_of_times_growing_with_the_chart_not_its_square(
    shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """N refills and N removals, then twice as many: the days of a date are read (`days_written`) about twice
    as often, where reading every removal for every refill reads them four times as often."""
    reads = [0]
    days_written = chart_days.days_written

    def counted(*args: object) -> object:
        reads[0] += 1
        return days_written(*args)  # type: ignore[arg-type]

    for module in (chart_days, removals):
        monkeypatch.setattr(module, "days_written", counted)
    counts = []
    for n in (60, 120):
        chart = [*meeting_chart()]
        chart += [procedure("62370", _dated(i, shape)) for i in range(n)]
        chart += [procedure("62365", _dated(i * 7 + 3, shape)) for i in range(n)]
        chart += [procedure("33206", _dated(i * 3, shape)) for i in range(n)]
        chart += [procedure("33233", _dated(i * 5 + 1, shape)) for i in range(n)]
        reads[0] = 0
        determine(chart, policy_id="cmm-210-idds")
        determine(chart)  # GEHA: the device check too
        counts.append(reads[0])
    assert counts[0] > 0
    assert counts[1] <= 2.5 * counts[0], counts
