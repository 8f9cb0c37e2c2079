"""What the Instructions card says beside its steps (cardfix20): its title counts what the clinician
reads, the numbered steps, when several criteria share one step (defect 1 of session 20: "8 items"
above 4 steps since `items.steps` merged them)."""

from __future__ import annotations

import re

from cards.items import Episode
from cards.render import instructions_card, next_steps
from tests.builders import determine, meeting_chart, without_codes

NUMBERED = re.compile(r"^\d+\. ", flags=re.M)


def test_the_title_counts_the_steps_the_card_numbers_when_criteria_share_them() -> None:
    """Cohere on an empty chart: 20 criteria in 10 steps; the title said "20 items to document" above
    10 numbered steps."""
    episode = Episode.of([determine([], policy_id="cohere-intrathecal-pain-pumps")])
    card = instructions_card(episode, *next_steps(episode))
    numbered = len(NUMBERED.findall(card["detail"]))
    assert numbered < len(episode.missing)
    assert f"{len(episode.missing)} items to document in {numbered} steps" in card["summary"], card["summary"]


def test_the_title_says_no_steps_when_each_item_is_its_own() -> None:
    episode = Episode.of([determine(without_codes(meeting_chart(), "62324"))])
    card = instructions_card(episode, *next_steps(episode))
    assert len(NUMBERED.findall(card["detail"])) == len(episode.missing) == 1
    assert card["summary"] == "GEHA: 1 item to document for 62362"
