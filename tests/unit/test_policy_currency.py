"""Policy currency: every policy states when it took effect and when it is due for review, in the
document's own words; a policy past its stated review date says so on the decision card and the
policy page, in one line."""

from __future__ import annotations

from datetime import date

import pytest

from service.catalog import Catalog
from service.policy import Currency
from service.stated_dates import StatedDate, stated_dates
from tests.calls import answer

OVERDUE = "Past its review date"


def test_only_geha_states_a_next_review_date(compiled_catalog: Catalog) -> None:
    policies = compiled_catalog.policies.values()
    stated = {p.id: p.currency.next_review for p in policies if p.currency.next_review}
    assert stated == {"geha-idds-chronic-pain": date(2022, 1, 1)}


def test_overdue_from_the_review_date_on() -> None:
    currency = Currency(date(2021, 1, 1), date(2022, 1, 1), "Next Review Date: Jan 2022")
    assert currency.overdue(date(2021, 12, 31)) is None
    assert currency.overdue(date(2022, 1, 1)) == date(2022, 1, 1)
    assert Currency(date(2021, 1, 1), None, "Effective 2021").overdue(date(2030, 1, 1)) is None


def decision_details(name: str) -> list[str]:
    body, _ = answer(name)
    return [c["detail"] for c in body["cards"] if c["source"]["topic"]["code"] == "coverage-info"]


def test_a_geha_decision_card_says_the_policy_is_past_its_review_date() -> None:
    (detail,) = [d for d in decision_details("order-select-62362-demo-meets") if "GEHA" in d]
    overdue = [line for line in detail.splitlines() if OVERDUE in line]
    assert overdue == [
        "⚠ Past its review date: GEHA said it would review this policy by January 2022; "
        "check GEHA for a newer version."
    ]


def test_a_current_policy_card_says_nothing_about_review() -> None:
    details = decision_details("order-select-62362-demo-cbc-insufficient")
    assert details and not any(OVERDUE in d for d in details)


def test_the_policy_page_states_the_dates_and_the_overdue_review(client) -> None:  # type: ignore[no-untyped-def]
    geha = client.get("/policies/geha-idds-chronic-pain").get_data(as_text=True)
    assert "Effective 2021-01-01; next review 2022-01-01" in geha
    assert OVERDUE in geha
    cbc = client.get("/policies/cbc-mp-1-058").get_data(as_text=True)
    assert "Effective 2025-07-01; the document states no next-review date" in cbc
    assert OVERDUE not in cbc


@pytest.mark.parametrize(
    ("words", "read"),
    [
        ("Effective August 1, 2019", [("effective", date(2019, 8, 1))]),
        ("Effective Date: 7/1/2025", [("effective", date(2025, 7, 1))]),
        ("Infusion Pumps (280.14) became effective December 17, 2004.", [("effective", date(2004, 12, 17))]),
        (
            "Origination Date: Jan 2021 Peer Reviewed: Dec 2020 Next Review Date: Jan 2022",
            [("next_review", date(2022, 1, 1))],
        ),
        ("next review Sept. 2024", [("next_review", date(2024, 9, 1))]),
        ("Effective February 30, 2019", [("effective", None)]),
        ("Document last updated: 3/29/2024", []),
        ("07/05/2022 ^{MPC} , 07/11/2023 ^{MPC} 07/24/2023", []),
        ("ineffective 7/1/2025; effective as of 2019; effective Monday 2019", []),
    ],
)
def test_only_labelled_dates_are_read_from_the_words(words: str, read: list[tuple[str, date | None]]) -> None:
    """What the words say a date is (payer review P-7); wordings that do not say it are not guessed at."""
    assert [(s.key, s.day) for s in stated_dates(words)] == read
    assert all(isinstance(s, StatedDate) and s.words in words for s in stated_dates(words))
