"""A presence diagnosis coded other than in ICD-10-CM is named on the device check's open line by the words
the chart gives it, as the documented (❌) line of the same record is, not by a number a clinician does not
know (review31f L2: "diagnosis SNOMED 441509002"); an ICD-10-CM code stays as written ("diagnosis Z95.0"),
and a concept the chart gives no words keeps its system and code."""

from __future__ import annotations

from typing import Any

from cards.items import Episode
from cards.render import detail
from tests.builders import ICD, SCT, condition, determine, finding_of, meeting_chart, procedure, statuses

DEVICE = "geha.excl.programmable-device"
LATER = "may have come later"


def open_line(diagnosis: dict[str, Any]) -> str:
    """GEHA's device finding for `diagnosis` (2019) beside a 33233 read with no date: left open."""
    removal = procedure("33233", "2023-02-02")
    removal.pop("performedDateTime")
    d = determine([*meeting_chart(), diagnosis, removal])
    assert statuses(d)[DEVICE] == "not-documented"
    return finding_of(d, DEVICE)


def test_a_snomed_presence_diagnosis_is_named_by_its_display_an_icd_one_by_its_code() -> None:
    by_display = open_line(condition(SCT, "441509002", "2019-02-02", "Presence of cardiac pacemaker"))
    assert by_display == (
        "could not be checked: diagnosis “Presence of cardiac pacemaker” (2 Feb 2019), but removal CPT "
        f"33233 (undated) {LATER}"
    )
    by_text = condition(SCT, "441509002", "2019-02-02")
    by_text["code"]["text"] = "Pacemaker in situ"
    assert open_line(by_text).startswith("could not be checked: diagnosis “Pacemaker in situ” (2 Feb 2019), ")
    nameless = open_line(condition(SCT, "441509002", "2019-02-02"))
    assert nameless.startswith("could not be checked: diagnosis SNOMED 441509002 (2 Feb 2019), ")
    icd = open_line(condition(ICD, "Z95.0", "2019-02-02", "Presence of cardiac pacemaker"))
    assert icd.startswith("could not be checked: diagnosis Z95.0 (2 Feb 2019), ")


def test_the_display_is_bounded_and_escaped_on_the_card() -> None:
    """A display is the chart's words: quoted to 40 characters on the open line, escaped by the card."""
    long = "Presence of *dual-chamber* cardiac pacemaker with remote monitoring"
    d = determine(
        [*meeting_chart(), condition(SCT, "441509002", "2019-02-02", long), procedure("33233", "2019-02")]
    )
    assert finding_of(d, DEVICE).startswith(
        "could not be checked: diagnosis “Presence of *dual-chamber* cardiac…” (2 Feb 2019), "
    )
    assert "diagnosis “Presence of \\*dual-chamber\\* cardiac…” (2 Feb 2019)" in detail(Episode.of([d]))
