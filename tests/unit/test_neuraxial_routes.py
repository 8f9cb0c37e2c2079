"""What a drug order's route says of the pump's drug (contract §2: route SNOMED 72607000 intrathecal or
404820008 epidural): a route that names another way (oral, intravenous) says it is not, one that tells
nothing either way ("Injection", SNOMED 418418000 with no words) leaves the drug's own words to decide. A
route typed "IT", its whole text, is intrathecal (s29: it told nothing before)."""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service import codes
from service.catalog import load_catalog
from service.codes import Routes, neuraxial_order, neuraxial_route
from service.terminology import ValueSetError
from tests import regex_support
from tests.builders import (
    SCT,
    concept,
    infusate_request,
    med_request,
    meeting_chart,
    service_request,
    statuses,
)
from tests.catalog_support import copy_policies, edit_yaml
from tests.contract_support import NOT_MET, call, coverage_card, mark_of
from tests.policy_charts import BACLOFEN_IT, kaiser, kpwa_spasticity_chart

IT_BACLOFEN = "Baclofen 2000 MCG/ML Intrathecal Solution"
ROUTES = load_catalog().terminology.routes  # the route value sets' codes and words


@pytest.mark.parametrize(
    ("route", "said"),
    [
        (concept(SCT, "72607000", "Intrathecal route"), True),
        ({"text": "epidural"}, True),
        (concept(SCT, "26643006", "Oral route"), False),
        ({"text": "PO"}, False),
        ({"text": "intravenous"}, False),
        ({"text": "IT"}, True),
        ({"text": " IT "}, True),
        ({"text": "I.T."}, True),  # review29d: near forms of the same two letters
        ({"text": "IT."}, True),
        ({"text": "\uff29\uff34"}, True),  # full-width
        ({"text": "i.t."}, None),
        ({"text": "".join(chr(ord(c) + 0xFEE0) for c in "intrathecal")}, True),  # full-width (review29g)
        ({"text": "".join(chr(ord(c) + 0xFEE0) for c in "oral")}, False),
        ({"coding": [{"system": "urn:oid:1.2.3.4", "code": "it", "display": "IT"}]}, True),
        ({"text": "it"}, None),
        ({"text": "It"}, None),
        ({"text": "apply it"}, None),
        ({"text": "IT route"}, None),
        ({"text": "IT", "coding": [{"system": SCT, "code": "26643006"}]}, False),  # the code says oral
        ({"text": "no intrathecal"}, None),  # review29d L3: a negated route word is no route
        ({"text": "avoid epidural"}, None),
        ({"text": "never intrathecal"}, None),
        ({"text": "without epidural"}, None),
        ({"text": "no IT"}, None),
        ({"text": "no IM"}, None),
        ({"text": "SC, no intrathecal"}, False),
        ({"text": "no oral, intrathecal"}, True),
        (concept(SCT, "418418000", "Intraspinal route"), True),  # "intraspinal" is a neuraxial word
        ({"coding": [{"system": SCT, "code": "418418000"}]}, None),
        ({}, None),
    ],
)
def test_what_a_route_says(route: dict[str, Any], said: bool | None) -> None:
    assert neuraxial_route(route, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # review30c L1: a hyphened "non-"/"no-" took back the rest of the phrase, and "not only" all of it
        ("non-preserved intrathecal", True),
        ("preservative-free, non-PF intrathecal", True),
        ("no-IV intrathecal", True),
        ("not only intrathecal", True),
        ("not only IM", False),
        ("non-intrathecal", None),  # a hyphened prefix negates its own word
        ("non preserved intrathecal", True),  # a negation's scope ends at a word that is no route word
        ("intrathecal no more than 1 mg/day", True),
        # review30c L2: a negation after the words it negates, and "IT" once a bracket's negation is out
        ("intrathecal contraindicated", None),
        ("intrathecal: no", None),
        ("intrathecal (avoid)", None),
        ("epidural - avoid", None),
        ("epidural - discontinued", True),  # review30h: given epidurally, then stopped: a route
        ("SC; intrathecal: no", False),
        ("IT (not IV)", True),
        ("IT, not IV", True),
        # what lows30 took back stays taken back
        ("not for intrathecal use", None),
        ("do not use intrathecally", None),
        ("not to be given intrathecally", None),
        ("Oral (not for intrathecal use)", False),
        ("IM (not for intrathecal use)", False),
        ("not IV or IM", None),
        ("not by mouth", None),
        ("intrathecal, not epidural", True),
        ("no IV, intrathecal", True),
        # review30h: how a drug is given, between a negation and its route, is in the negation's scope
        ("Do not administer intrathecally", None),
        ("Not intended for intrathecal use", None),
        ("Never administer intrathecally or epidurally", None),
        ("IV only; do not administer intrathecally", False),
        ("not for intrathecal bolus or epidural", None),
        ("Intrathecal infusion; not for IV push or IM", True),
        ("No IV - intrathecal only", True),  # review30h: a dash between spaces ends what a negation says
        ("no-IV intrathecal only", True),
        ("Intrathecal\u2014IV contraindicated", True),  # review30h: an em dash ends a phrase, spaced or not
        ("No IV\u2014intrathecal only", True),
        ("IT\u2014no IV", True),
        ("IT - no IV", True),
        # review30h: a negation after its words takes back none past a bracket, colon, dash or sentence end
        ("Intrathecal (IV contraindicated)", True),
        ("Intrathecal - IV contraindicated", True),
        ("Intrathecal route: IV avoided", True),
        ("Intrathecal. IV contraindicated", True),
        ("Intrathecal (IV: no)", True),
        ("Epidural (intrathecal contraindicated)", True),
        # review30j: an abbreviation of how a drug is given ends no sentence: its negation takes it back
        ("Do not admin. intrathecally", None),
        ("not for inj. intrathecal", None),
        ("Not for intrathecal inj. or epidural", None),
        ("Not for IV use. Intrathecal only.", True),  # a sentence's end still ends the scope
    ],
)
def test_a_negation_takes_back_only_the_route_words_it_negates(text: str, said: bool | None) -> None:
    """A negation takes back the route words (and fillers: "for", "use", "given") next to it, before or
    after it; a hyphened prefix its own word alone (codes.ROUTE_NEGATIONS, ROUTE_NEGATIONS_AFTER,
    ROUTE_FILLERS)."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said", "kept"),
    [
        ("IV contraindicated. Give orally", False, "  Give orally"),
        ("IV contraindicated. give orally", False, "  give orally"),
        ("IT CATHETER NO. II", None, "  II"),  # "NO." in capitals: a capital word after it tells nothing
        ("IV avoid.\nPO", False, " \nPO"),
        ("I.V. contraindicated. P.O. only", False, "  P.O. only"),
        ("IV contraindicated. Inj. IM", False, "  Inj. IM"),
        ("Intrathecal contraindicated. Give orally", False, "  Give orally"),
        ("Intrathecal (IV contraindicated). Oral OK", True, "Intrathecal ( ). Oral OK"),
        ("INTRATHECAL: NO. IV ONLY", False, "  IV ONLY"),
        # the sentence before is not crossed, as before
        ("Intrathecal. IV contraindicated. Oral OK", True, "Intrathecal.   Oral OK"),
        # no sentence's end: a number after the dot ("no. 2" is number two), no space after it
        ("IT pump no. 2", True, "IT pump no. 2"),
        ("IT catheter no. A12", True, "IT catheter no. A12"),  # a word with digits: a number too
        ("IV no. 2 line", False, "IV no. 2 line"),
        ("IV contraindicated.Give orally", False, "IV contraindicated.Give orally"),
        # review33c: only "no." is an abbreviation too; after any other negation's dot, or "no"'s bracket,
        # a space ends the sentence whatever follows: a number, a numbered list, a bracket or a dash
        ("IV contraindicated. 2.5 mg PO", False, "  2.5 mg PO"),
        ("1) IV contraindicated. 2) PO", False, "1)   2) PO"),
        ("IV not. (Give orally)", False, "  (Give orally)"),
        ("IV avoided. - PO only", False, "  - PO only"),
        ("IV (no). 2 mg PO", False, " ). 2 mg PO"),
        ("Intrathecal never. 0.5 mg IV", False, "  0.5 mg IV"),
        ("IV contraindicated . Give orally", False, "  . Give orally"),  # a space before its dot
        ("IT pump no. (2)", True, "IT pump no. (2)"),  # "no."'s own dot: a word of letters only after it
        # the lead's decision on review33c F1: "of" in small letters, or a Roman numeral in capitals, after
        # "no." says the number too, as before 34c2589; "Of" in capitals starts a sentence
        ("IT pump no. of refills 3", True, "IT pump no. of refills 3"),
        ("Intrathecal infusion: No. of doses 1", True, "Intrathecal infusion: No. of doses 1"),
        ("IT catheter no. II", True, "IT catheter no. II"),
        ("IT catheter no. IV", True, "IT catheter no. IV"),
        ("IT catheter no. XII", True, "IT catheter no. XII"),
        ("IV: no. Of note, give PO", False, "  Of note, give PO"),
        ("IV: no. If needed, give PO", False, "  If needed, give PO"),  # a word not only I, V and X
        ("IV: no. I.T. pump", True, "  I.T. pump"),  # "I.T." is no Roman numeral
        # route33b's regression: a "No." answering a question is no number, whatever follows
        ("Intrathecal? No. IV only", False, "  IV only"),
        ("Intrathecal ?  No. of doses 2", None, "  of doses 2"),
    ],
)
def test_a_negation_after_its_words_ends_its_phrase_at_its_sentences_end(
    text: str, said: bool | None, kept: str
) -> None:
    """route32b, s32's stop note: a negation after the route words it negates took them back only where
    nothing but a phrase's mark or the text's end followed it (codes._AFTER_LAST), so "IV contraindicated.
    Give orally" read IV and oral, and a draft insulin order routed "Intrathecal contraindicated. Give
    orally" beside a 62362 was the excluded infusate. Its sentence's end ends its phrase too, where it is
    clearly one: its one dot, then a space (codes._SENTENCE_AFTER); after "no."'s own dot, a word of letters
    only (codes._SENTENCE_AFTER_ABBREVIATED): a dot before a number may be that abbreviation's ("IT pump no.
    2", "IT catheter no. A12"), no other negation's (review33c: "IV contraindicated. 2.5 mg PO" read IV)."""
    assert neuraxial_route({"text": text}, ROUTES) is said
    assert codes.route_texts({"text": text}, ROUTES) == [kept]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # review30j MEDIUM (review30h L1): "Intrathecal / IV contraindicated" is ambiguous (both routes, or
        # the second only?); a slash lists routes whatever its spaces, so a negation takes the list back
        # whole: the text says no route, as "Intrathecal/IV contraindicated" does (the lead's decision, s31)
        ("Intrathecal / IV contraindicated", None),
        ("Intrathecal /IV contraindicated", None),
        ("IV / Intrathecal contraindicated", None),
        ("Oral / IV contraindicated", None),
        ("no IV / IM", None),
        ("Intrathecal/IV contraindicated", None),
        ("IV/IM contraindicated", None),
        ("no IV/IM", None),
        # but a route "only" follows is said (codes.ROUTE_AFFIRMATIONS), and a dash between spaces ends it
        ("NOT IV / INTRATHECAL ONLY", True),
        ("NOT IV/INTRATHECAL ONLY", True),
        ("No IV / intrathecal only", True),
        ("No IV - intrathecal only", True),
        ("Intrathecal / IV discontinued", True),  # no negation: given, then stopped
        ("Intrathecal / IV", True),
    ],
)
def test_a_slash_lists_routes_a_negation_takes_back_whole_whatever_its_spaces(
    text: str, said: bool | None
) -> None:
    """review30j: route31 first made a spaced slash end a negation's scope, so "Intrathecal / IV
    contraindicated" read intrathecal but "IV / IM contraindicated" IV, and a text meant the same with or
    without spaces read otherwise. One rule: a slash joins the routes of a list (codes._FORWARD_GAP,
    _BACKWARD_WITHIN), which a negation takes back whole, as "IV and IM contraindicated"."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # review30h L2: "and" joins a list of routes a negation takes back whole, as "or" and "nor" did
        ("IV and IM contraindicated", None),
        ("IV and IM: no", None),
        ("intrathecal and epidural contraindicated", None),
        ("Not for IV and IM use", None),
        # review30h L3: a list's commas are crossed where one of codes.ROUTE_LIST_ENDS closes it
        ("Not for intravenous, intramuscular, or intrathecal use", None),
        ("Not for intravenous, intramuscular or intrathecal use", None),
        ("not IV, IM or intrathecal", None),
        ("IV, IM, or intrathecal contraindicated", None),
        ("intrathecal, IV and IM contraindicated", None),
        # a comma no list word closes still ends the scope; so do a semicolon, a bracket, a sentence's end
        ("no IV, IM, intrathecal", True),
        ("IV, intrathecal", True),
        ("not IV and IM, intrathecal only", True),
        ("Intrathecal; IV and IM contraindicated", True),
        ("Intrathecal (IV and IM contraindicated)", True),
        ("Not for IV or IM use. Intrathecal, epidural or IV only.", True),
        ("IT, IV or IM contraindicated", None),
        ("IT; IV or IM contraindicated", True),
        # a list word joins a route word only; a route "only" follows is said, never taken back
        ("No IV and give orally", False),
        ("Not for IV or for IM use", None),  # "or" and "nor" are fillers too, as they were
        ("not to be given IV nor given intrathecally", None),
        ("No IV and intrathecal only", True),
        ("not IV or intrathecal only", True),
        ("no IV, IM or intrathecal only", True),
        ("Not for IV use and intrathecal only", True),
        ("not only intrathecal", True),
        # "discontinued" negates nothing, a list no more than a route (review30h)
        ("IV and IM discontinued", False),
        ("intrathecal and IV discontinued", True),
    ],
)
def test_a_negation_takes_back_a_list_of_routes_whole(text: str, said: bool | None) -> None:
    """review30h L2, L3: "IV and IM contraindicated" read as IV, and "Not for intravenous, intramuscular, or
    intrathecal use" as intrathecal: "and" was no filler, and a comma ended every scope. A negation before
    or after a list of routes one of ROUTE_LIST_ENDS ("and", "or", "nor") closes takes back all of it, across
    its commas; "no IV, intrathecal", whose comma closes no list, still reads intrathecal. A list word is
    crossed before a route word only ("No IV and give orally" is oral), and a route word "only" follows
    (ROUTE_AFFIRMATIONS) is never in a negation's scope: "No IV and intrathecal only" stays intrathecal, as
    it read before "and" joined a list."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # a filler beside the comma: another clause, its routes said
        ("Not for IV use, for intrathecal or epidural use only", True),
        ("Not for IV use, intrathecal or epidural", True),
        ("Avoid IV, use intrathecal or epidural", True),
        ("Do not give IV, give intrathecally or epidurally", True),
        ("Give intrathecally, IV or IM contraindicated", True),
        ("Intrathecal via pump, IV and IM contraindicated", True),
        ("Intrathecal via pump, IM, IV or SC contraindicated", True),
        # route words only next to its commas: a list, taken back whole (route31, 1ba792e)
        ("Not for intravenous, intramuscular, or intrathecal use", None),
        ("no IV, IM, SC, or intrathecal", None),
        ("Intrathecal: IV, IM and SC contraindicated", True),
        ("IV, IM and intrathecal contraindicated", None),
        ("Intrathecal, IV or IM contraindicated", None),  # a list of three: the lead's decision
        ("no IV, IM or intrathecal only", True),
        ("Not for IV push, IM, or intrathecal use", None),  # how a route's drug is given, in its item
        ("IV push, IM bolus, or intrathecal contraindicated", None),
        ("Give intrathecal bolus, IV or IM contraindicated", True),
    ],
)
def test_a_comma_beside_a_word_of_another_clause_is_no_lists(text: str, said: bool | None) -> None:
    """review31b HIGH (of 1ba792e): a comma was crossed wherever a list word closed what followed it, a
    clause's words too, so "Not for IV use, for intrathecal or epidural use only" and "Give intrathecally,
    IV or IM contraindicated" read as no route, and a draft insulin order so routed beside a 62362 met every
    GEHA criterion. A list's commas stand between route words (codes._list_item); before the negation, an
    item holding more than route words is none of the list."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Not for IV use, IM use, or intrathecal use", None),
        ("Not for IV use, IM use or intrathecal use", None),
        ("Not for intravenous use, intramuscular use, or intrathecal use", None),
        ("Avoid IV route, IM route, or intrathecal route", None),
        ("Do not give by IV route, IM route or intrathecal route", None),
        ("IV use, IM use, or intrathecal use contraindicated", None),
        ("IV route, IM route and intrathecal route contraindicated", None),
        # what stays: a filler the next item does not repeat starts another clause
        ("Not for IV use, intrathecal or epidural", True),
        ("Not for IV use, for intrathecal or epidural use only", True),
        ("Intrathecal via pump, IV and IM contraindicated", True),
    ],
)
def test_a_list_whose_items_say_alike_how_the_drug_is_given_is_taken_back_whole(
    text: str, said: bool | None
) -> None:
    """review31e HIGH (of 2bedc03): a list's comma had to stand right after a route word (or "IV push"), so
    in "Not for IV use, IM use, or intrathecal use" the negation stopped at the first comma and the text
    read as intrathecal (no route at c2fdd02), and a draft insulin order so routed beside a 62362 was "not
    covered — an excluded infusate is ordered". A filler right after its route word that the next item
    repeats right after its own is an item's (codes._parallel)."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("neither IV nor IM", None),
        ("Neither IV nor IM, intrathecal only", True),
        ("neither IV nor IM, intrathecal only", True),
        ("neither intrathecal nor epidural", None),
        ("Neither IV nor intrathecal", None),
        ("neither IV nor IM; oral", False),
    ],
)
def test_neither_takes_back_the_routes_it_lists(text: str, said: bool | None) -> None:
    """review31b L5: "neither" was no negation, so "neither IV nor IM" read as IV (an injectable course,
    GEHA's routes criterion met) and "neither IV nor IM, intrathecal only" as intrathecal and injectable. It
    is one of codes.ROUTE_NEGATIONS, its scope what "not" takes back: the list "nor" closes, to the comma."""
    assert neuraxial_route({"text": text}, ROUTES) is said


def test_what_neither_takes_back_is_no_other_route_either() -> None:
    """The words "neither" takes back are out of the route's text the record reads (route_texts): no IV
    is left to say an injectable route."""
    kept = codes.route_texts({"text": "neither IV nor IM, intrathecal only"}, ROUTES)
    assert not ROUTES.other.matches_text(" | ".join(kept))


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # review31e L1, L2: the list's first item says how its drug is given; the next item, a route word
        # alone before another of the list's commas, makes it a list of three routes or more
        ("Not for IV administration, IM, or intrathecal", None),
        ("Not for IV drip, IM, or intrathecal use", None),  # "drip": how it is given, as "push"
        ("Not for IV use, IM, or intrathecal", None),
        ("Not for IV administration, IM, SC, or intrathecal use", None),
        ("IV administration, IM, or intrathecal contraindicated", None),
        ("Not for IV drip, intrathecal or epidural", None),  # as "Not for IV push, intrathecal or epidural"
        ("IV drip contraindicated", None),
        ("no IV drip", None),
        # two items after a clause's filler and comma: another clause may say them (review31b's rule)
        ("Not for IV use, intrathecal or epidural", True),
        ("Not for IV administration, intrathecal or epidural", True),
        ("Not for IV administration, IM or intrathecal", True),
        ("Not for IV use, for intrathecal or epidural use only", True),
        ("Not for IV use, use intrathecal, IM, or epidural", True),
        ("Intrathecal via pump, IM, IV or SC contraindicated", True),  # "pump" is not right after a route
        ("Give intrathecally, IV, IM or SC contraindicated", True),
        ("Not for IV administration, IM, or intrathecal only", True),
        ("No IV use, IT, epidural, or SC preferred", True),  # no phrase's end after the list: below
    ],
)
def test_a_list_whose_first_item_says_how_its_drug_is_given_is_taken_back_whole(
    text: str, said: bool | None
) -> None:
    """review31e L1, L2: "Not for IV administration, IM, or intrathecal" and "Not for IV drip, IM, or
    intrathecal use" read intrathecal: a filler before a list's comma ended the list unless it was one of
    ROUTE_MANNERS or the next item repeated it, and "drip" was no filler at all. "drip" is a manner
    (ROUTE_MANNERS), and any filler right after its route word is the item's where the next item, a route
    word alone, stands before another of the list's commas (codes._in_a_serial_list)."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # the list goes on into a word of another kind: the filler before its first comma ends the phrase
        ("No IV use, IT, epidural, or SC preferred", True),
        ("No oral route, IV, IM, or intrathecal instead", True),
        ("Avoid PO use, IV, IM, or IT acceptable", False),  # IV and IM are said
        ("Not for IV administration, IM, or intrathecal use preferred", True),
        ("Not for IV use, intrathecal, or epidural use only", True),
        ("No IV use, IM, SC, or intrathecal OK", True),
        # the list ends its phrase: at the text's end, a sentence's end, a mark, "but", "and" starting
        # another clause, after a filler ("use")
        ("Not for IV administration, IM, or intrathecal", None),
        ("Not for IV administration, IM, or intrathecal use", None),
        ("Not for IV administration, IM, or intrathecal. Give orally", False),
        ("Not for IV administration, IM, or intrathecal (see label)", None),
        ("Not for IV administration, IM, or intrathecal - give orally", False),
        ("Not for IV administration, IM, or intrathecal; oral OK", False),
        ("Not for IV administration, IM, or intrathecal, but oral", False),
        ("Not for IV administration, IM, or intrathecal but oral", False),
        ("Not for IV administration, IM, or intrathecal and give orally", False),
        ("Not for IV administration, IM, or intrathecal only", True),  # "only" keeps its route, as before
        # the other rules of an item's filler hold wherever the list ends (the decision is the serial rule's):
        # an item written with its manner ("IV push") or a filler the next repeats is of the list as a route
        # word alone is, and the negation governs the whole list, whatever follows it (route33, s33: as
        # "Not for IV, IM, or intrathecal instead" and "Not for IV push, intrathecal or epidural instead")
        ("Not for IV push, IM, or intrathecal instead", None),
        ("Not for IV use, IM use, or intrathecal use instead", None),
        ("Not for IV, IM, or intrathecal instead", None),
        ("Not for IV push, intrathecal or epidural instead", None),
        ("Not IV or intrathecal instead", None),
        # a negation after the list: the list ends where it does, and it ends its phrase
        ("Intrathecal use, IV, IM, or SC contraindicated", None),
        ("IV administration, IM, or intrathecal contraindicated", None),
    ],
)
def test_a_serial_list_after_a_negation_is_taken_back_whole_only_where_it_ends_its_phrase(
    text: str, said: bool | None
) -> None:
    """review32c B: route32's serial rule (any filler right after its route word before a list's comma, in a
    list of three routes or more: codes._in_a_serial_list) took back lists of alternatives: "No IV use, IT,
    epidural, or SC preferred" and "No oral route, IV, IM, or intrathecal instead" (intrathecal at 49a7f06)
    said no route, "Avoid PO use, IV, IM, or IT acceptable" no injectable one. The lead's decision (s32):
    after a negation, a comma the serial rule alone crosses stays crossed only where the list ends its
    phrase as a negation's scope ends one (codes._scope); else the filler ends it, as with two items."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("Not for intravenous (IV), intramuscular (IM), or intrathecal (IT) use", None),
        ("Not for intravenous (IV) or intrathecal (IT) use", None),
        ("Not for intravenous ( I.V. ), or intrathecal ( I.T. ) use", None),
        ("intrathecal (IT) contraindicated", None),
        ("intravenous (IV) contraindicated", None),
        ("Intrathecal (IT)", True),
        ("Oral; intrathecal (IT) contraindicated", False),
        # what is in the brackets is no abbreviation of the route word before them: they end its phrase
        ("no IV (IT)", True),
        ("no intravenous (IT)", True),
        ("no IV (IM)", False),
        ("Intrathecal (IV contraindicated)", True),
        ("SC (not IT)", False),
        ("no oral (intrathecal)", True),
        # review32c: the route word in brackets after its abbreviation, as well
        ("Not for IV (intravenous), IM (intramuscular), or IT (intrathecal) use", None),
        ("Not for IV (intravenous) use", None),
        ("NOT FOR IV (INTRAVENOUS) USE - IT PUMP ONLY", True),
        ("IT (intrathecal) contraindicated", None),
        ("IT (intrathecal)", True),
        ("no IT (intravenous)", False),  # no abbreviation of its kind: the bracket ends the phrase
        ("no IV (intrathecal)", True),
    ],
)
def test_an_abbreviation_in_brackets_after_its_route_word_is_of_its_item(
    text: str, said: bool | None
) -> None:
    """review31e L2: "Not for intravenous (IV), intramuscular (IM), or intrathecal (IT) use" read intrathecal,
    a bracket ending every phrase, and so did "Not for IV (intravenous), IM (intramuscular), or IT
    (intrathecal) use" (review32c). A route word alone in brackets right after a route word it abbreviates,
    or that abbreviates it (its letters in the word's order, from its first; both neuraxial or neither), is
    of that item (codes._glosses_unbracketed); any other bracket ends the phrase as before."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # review31b L2: "IT" after a verb taking an object, written in capitals, is the pronoun (in a text
        # naming another route, the lead's decision, s32: below)
        ("IV - GIVE IT INFUSION OVER 30 MIN", False),
        ("PO: TAKE IT INFUSION", False),
        ("MIX IT  INFUSION PUMP - IV", False),
        ("IV\nADMINISTER\nIT INFUSION", False),
        ("SC. START IT INFUSION", False),
        ("IV - GIVE IT INFUSION, IT PUMP", True),  # a second "IT" no verb takes
        # never elsewhere: what a drug is given through after "IT" says intrathecal
        ("IT pump", True),
        ("via IT catheter", True),
        ("IT infusion", True),
        ("Give IT infusion", True),  # "IT" in capitals, the verb not: the route
        ("REFILL IT PUMP", True),  # what is done to a pump, not one of ROUTE_OBJECT_VERBS
        ("FORGIVE IT pump", True),
        # review31b L3: "IT-pump" read as no route, the device words needing a space
        ("IT-pump", True),
        ("IT-catheter", True),
        ("via IT-catheter", True),
        ("IT\u2011pump", True),  # a non-breaking hyphen
        ("no IT-pump", None),
        ("IT-pump contraindicated", None),
        ("it-pump", None),
        ("IV: GIVE IT-PUMP", False),
        # review32c: the verb rule holds in a text all in capitals only (the lead's decision); in a text with
        # a small letter the pronoun would be written "it", so "IT" there is the route
        ("GIVE IT-pump", True),
        ("GIVE IT infusion", True),
        ("Morphine 25 mg/mL: GIVE IT INFUSION via pump", True),
        ("Via pump: USE IT PUMP", True),
        ("Baclofen 2000 mcg/mL, START IT INFUSION at 50 mcg/day", True),
        ("IV - GIVE IT INFUSION OVER 30 MIN; NO IM", False),
        # review32c: nor a verb's object written with dots or in brackets, as no pronoun is
        ("GIVE I.T. PUMP", True),
        ("GIVE (IT) CATHETER", True),
        ("TAKE [IT] PUMP", True),
        ("IV: GIVE IT PUMP, GIVE I.T. PUMP", True),
        ("IV: GIVE IT PUMP, GIVE IT PUMP", False),
        ("GIVE IT. PUMP", None),
        # left as they are (ambiguous, the lead's decision): "IT." may end a sentence ("TAKE IT.")
        ("IT. Pump", None),
    ],
)
def test_it_the_object_of_a_verb_is_no_route_it_hyphened_to_a_pump_is(text: str, said: bool | None) -> None:
    """review31b L2, L3: "IV - GIVE IT INFUSION OVER 30 MIN" read intrathecal (a draft insulin so routed
    was the pump's excluded drug), and "IT-pump" as no route. Right after one of codes.ROUTE_OBJECT_VERBS,
    as written in capitals, in a text all in capitals naming another route, "IT" is the verb's object; a
    hyphen joins "IT" to what a drug is given through as a space does (and the word is a route word a
    negation takes back)."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # no other route for the pronoun's drug to be given by: "IT" is the route (intrathecal at 49a7f06)
        ("GIVE IT INFUSION", True),
        ("GIVE IT INFUSION OVER 30 MIN", True),
        ("START IT INFUSION AT 50 MCG/DAY", True),
        ("STOP IT PUMP", True),
        ("STOP IT PUMP IF OVERSEDATED", True),
        ("USE IT PUMP", True),
        ("RUN IT INFUSION", True),
        ("TAKE IT INFUSION", True),
        ("ADMINISTER\nIT INFUSION", True),
        ("GIVE IT-PUMP", True),
        ("GIVE IT PUMP, GIVE IT PUMP", True),
        ("NO IV - GIVE IT INFUSION", True),  # the route named is taken back: none is left
        ("INJECTION: GIVE IT INFUSION", True),  # an intrathecal drug is an injection too (neuraxial_too)
        # another route named, before or after, in another sentence too: "IT" is the pronoun
        ("IV - GIVE IT INFUSION OVER 30 MIN", False),
        ("GIVE IT INFUSION, IV", False),
        ("PO. TAKE IT PUMP", False),
        ("ORAL: USE IT PUMP", False),
        ("SUBCUT: RUN IT INFUSION", False),
        ("GIVE IT. PUMP", None),  # "IT." ends a sentence: no "IT" before a pump at all
    ],
)
def test_it_the_object_of_a_verb_is_the_route_where_the_text_names_no_other(
    text: str, said: bool | None
) -> None:
    """review32c A: route32 read "IT" after one of ROUTE_OBJECT_VERBS as its object in every text all in
    capitals, so "START IT INFUSION AT 50 MCG/DAY", "STOP IT PUMP", "USE IT PUMP" (intrathecal at 49a7f06)
    read no route: a draft insulin order so routed beside a 62362 was no longer the excluded infusate. The
    lead's decision (s32): the pronoun stands for a drug given by another route the text names ("IV - GIVE IT
    INFUSION"), so it is read as one only where the text names another (`Routes.names_another_route`)."""
    assert neuraxial_route({"text": text}, ROUTES) is said


LOCAL_ROUTES = "urn:example:ehr-route"  # a route coded the EHR's own way: read by its words


def _coded_locally(text: str | None, *displays: str) -> dict[str, Any]:
    """A route with `text` (none where None) and a coding of the EHR's own per display."""
    route: dict[str, Any] = {} if text is None else {"text": text}
    route["coding"] = [
        {"system": LOCAL_ROUTES, "code": f"R{k}", "display": display} for k, display in enumerate(displays)
    ]
    return route


@pytest.mark.parametrize(
    ("route", "said"),
    [
        # another route named by a coding's display: "IT" the verb's object is the pronoun
        (_coded_locally("GIVE IT INFUSION", "Intravenous"), False),
        (_coded_locally("START IT INFUSION AT 50 MCG/DAY", "ORAL"), False),
        (_coded_locally("STOP IT PUMP", "Other", "Subcutaneous"), False),
        (_coded_locally("Intravenous", "GIVE IT INFUSION"), False),
        (_coded_locally(None, "GIVE IT INFUSION", "IV"), False),
        (
            {
                "text": "GIVE IT INFUSION",
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0162", "code": "IV", "display": "IV"}
                ],
            },
            False,
        ),
        # none named: the route
        (_coded_locally("GIVE IT INFUSION", "Other"), True),
        (_coded_locally("GIVE IT INFUSION", "IT"), True),
        (_coded_locally("GIVE IT INFUSION", "Not intravenous"), True),  # the route named is taken back
        (_coded_locally("GIVE IT INFUSION", "Injection"), True),  # an intrathecal drug is an injection too
        (_coded_locally("GIVE IT INFUSION", "Intrathecal", "Intravenous"), True),  # one neuraxial says so
        (_coded_locally("Give IT infusion", "Intravenous"), True),  # "IT" in a text with small letters
        # the lead's decision on review33c F3: a text that names another route and takes it back has
        # answered it; a display naming that route does not bring it back
        (_coded_locally("NO IV - GIVE IT INFUSION", "Intravenous"), True),
        (_coded_locally("GIVE IT INFUSION (NOT IV)", "Intravenous"), True),
        (_coded_locally("GIVE IT INFUSION (NOT IV)", "Oral"), True),
        (
            {
                "text": "GIVE IT PUMP. IV CONTRAINDICATED.",
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0162", "code": "IV", "display": "IV"}
                ],
            },
            True,
        ),
        (_coded_locally("NO IV - GIVE IT INFUSION. PO", "Intravenous"), False),  # it names one it keeps
        (_coded_locally("NOT INTRAVENOUS", "GIVE IT INFUSION", "IV"), False),  # another text took it back
    ],
)
def test_it_the_object_of_a_verb_is_the_pronoun_where_a_codings_display_names_another_route(
    route: dict[str, Any], said: bool | None
) -> None:
    """route32b (open point 4), s32's stop note: whether the route names another route, for "IT" a verb's
    object ("GIVE IT INFUSION"), was read in the one text "IT" is in, so a route typed "GIVE IT INFUSION"
    coded the EHR's own way as "Intravenous" read intrathecal, where "IV - GIVE IT INFUSION" reads IV. A
    route's texts, its text and every coding's display, are read together, as a concept's are
    (codes.concept_texts, neuraxial_route: `Routes.names_another_route` of them all)."""
    assert neuraxial_route(route, ROUTES) is said


def test_whether_a_route_names_another_is_read_once_per_route_however_many_codings_it_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A route of 2,000 codings each displayed "GIVE IT INFUSION" and one "Intravenous" (within the body
    limits) reads whether it names another route once, over its texts together: not once per text, each a
    read of them all (quadratic in the codings)."""
    calls = _counting(monkeypatch, Routes, "names_another_route")
    route = _coded_locally(None, *["GIVE IT INFUSION"] * 2_000, "Intravenous")
    assert neuraxial_route(route, ROUTES) is False
    assert calls() == 1


@pytest.mark.parametrize(
    "text",
    [
        "Not for IV administration, " + "IM, " * 2_500 + "or intrathecal",
        "IV administration, " + "IM, " * 2_500 + "or intrathecal contraindicated",
        "no IV use, " * 2_500 + "intrathecal",
        "Not for " + "intravenous (IV), " * 1_000 + "or intrathecal (IT) use",
        "no " + "intravenous (IV) " * 1_000 + "intrathecal",
        "no " + "IV (" * 2_500 + "IT",
        "neither " + "IV nor " * 2_500 + "IM",
        "IV - " + "GIVE IT INFUSION " * 1_000 + "no IV",
        "IV - " + "GIVE IT VIA PUMP " * 700 + "no IV",  # across "via" (review33c F2)
        "IT via " * 1_500 + "pump",
    ],
)
def test_what_reads_an_items_filler_an_abbreviation_or_neither_is_linear_in_a_texts_words(
    text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """route32: each 10 KB text or more (within the body limits) of the shapes the rules above read (a
    serial list's filler, a bracketed abbreviation, "neither", "GIVE IT") reads each of its words as a route
    a bounded number of times: nothing is read again at each step of a scope (review31b, review31e found
    two such texts quadratic)."""
    assert len(text) >= 10_000
    assert _route_readings(text, monkeypatch)[1] <= 8 * len(text.split())


def _route_readings(text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[bool | None, int]:
    """What `text` reads as, and how many times a run of its words was read as a route in it."""
    calls = _counting(monkeypatch, codes, "_says_a_route")
    return neuraxial_route({"text": text}, ROUTES), calls()


def _counting(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> Callable[[], int]:
    """`owner.name` replaced, for the test, by itself counting its calls; how many so far."""
    calls = 0
    original = getattr(owner, name)

    def counted(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args)

    monkeypatch.setattr(owner, name, counted)
    return lambda: calls


class _Offered:
    """A compiled pattern of service/codes.py that counts, into `tally`, the characters it reads: those a
    search or a full match is offered (from `pos` to `endpos`), those a match anchored at `pos` matched. A
    pattern searched for from every word to the text's end reads n² of them."""

    def __init__(self, pattern: re.Pattern[str], tally: list[int]) -> None:
        self._pattern, self._tally = pattern, tally

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._pattern, name)
        if name not in {"match", "fullmatch", "search", "finditer", "findall"}:
            return found

        def read(string: str, pos: int = 0, endpos: int = sys.maxsize) -> Any:
            result = found(string, pos, endpos)
            if name != "match":
                self._tally[0] += max(0, min(endpos, len(string)) - pos)
            elif result is not None:
                self._tally[0] += result.end() - pos
            return result

        return read


def _work(text: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """The work of reading `text` as a route, counted, never timed (the same count on every machine): every
    function call made (Python's and the C ones: each regex call, each string method), every line run in
    service/codes.py (each turn of a loop there, a comprehension's too), and every character a pattern of
    service/codes.py reads (`_Offered`), the module's and those compiled in the Routes."""
    tally = [0]
    with monkeypatch.context() as patched:
        for name, value in vars(codes).items():
            if isinstance(value, re.Pattern):
                patched.setattr(codes, name, _Offered(value, tally))
        routes = copy.copy(ROUTES)
        for name, value in vars(ROUTES).items():
            if isinstance(value, re.Pattern):
                object.__setattr__(routes, name, _Offered(value, tally))
        events = 0

        def called(frame: Any, event: str, arg: Any) -> None:
            nonlocal events
            events += event == "c_call"

        def ran(frame: Any, event: str, arg: Any) -> Any:
            nonlocal events
            events += 1
            return ran if frame.f_code.co_filename == codes.__file__ else None

        tracing, profiling = sys.gettrace(), sys.getprofile()
        sys.settrace(ran)
        sys.setprofile(called)
        try:
            neuraxial_route({"text": text}, routes)
        finally:
            sys.settrace(tracing)
            sys.setprofile(profiling)
    return events + tally[0]


@pytest.mark.parametrize(
    "unit",
    [
        "GIVE IT INFUSION ",
        "GIVE " + " " * 40,
        "IT-" * 10 + " ",
        "no intravenous (" + " " * 30,
        "not IV administration, IM, ",
        "neither IV (" + " " * 30,
        "Not for intravenous (IV), ",
        "no IV (IT) ",
        "IV drip, IM, ",
        "not IV use, IM, or SC; ",
        "no IV (intravenous), ",
        "PO GIVE IT PUMP ",
        "IV: STOP IT PUMP. ",  # a sentence each, another route named: read once per text, not per sentence
        "No IV use, IM, or SC preferred; ",
        "No IV use, IM, " * 3,
        "IV contraindicated. Give orally. ",  # a negation's sentence end (s32's stop note)
        "IV contraindicated. 2 mg PO. ",  # and before a number (review33c)
        "IV: no.  )  " + " " * 30,
    ],
)
def test_a_route_text_ten_times_as_long_costs_no_more_than_about_ten_times_as_much(
    unit: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """route32: what is added here (ROUTE_OBJECT_VERBS before "IT", a hyphen after it, an opening bracket
    before an abbreviation, a serial list's filler, "neither") is read without going back over a run of words
    or spaces: a 50 KB text of a repeated shape costs about ten times a 5 KB one (quadratic would be a
    hundred). Counted (`_work`: calls made, lines run, characters a pattern reads), never timed: timing is
    for bench/ only, a machine's load makes it flake (review32c). The regex engine's own steps within one
    call are not counted: each pattern added is anchored, or bounded by the words either side of it."""
    small, large = unit * (5_000 // len(unit)), unit * (50_000 // len(unit))
    assert _work(large, monkeypatch) < 1.2 * (len(large) / len(small)) * _work(small, monkeypatch)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("IV, " * 400 + "or IM contraindicated", None),  # each comma told once, not once per scope's step
        ("no " + "IV, " * 400 + "or IM", None),
        ("no IV, " * 400 + "intrathecal", True),
    ],
)
def test_a_route_text_of_many_commas_is_read_in_time_linear_in_its_words(
    text: str, said: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """review31b HIGH: whether a comma closes a list of routes was told afresh at each comma a scope crossed,
    reading every word to the list's end, so a route text of n commas took n²/2 readings of a word: a 10 KB
    route text "IV, IV, … or IM contraindicated" took 9 s, 100 KB some 15 minutes, within the body limits.
    Each word of a text is now read as a route a bounded number of times (codes._list_starts)."""
    read, calls = _route_readings(text, monkeypatch)
    assert read is said
    assert calls <= 6 * len(text.split())


@pytest.mark.parametrize(
    "text",
    [
        "IT" + " " * 5_000 + "x",  # a run of spaces inside the text, not at its end
        "IT " + "-" * 5_000 + " x",  # of dashes
        "IT" + "\u2014 " * 2_500 + "x",
    ],
)
def test_a_route_text_holding_a_long_run_of_spaces_or_dashes_says_no_route(text: str) -> None:
    """review31e's texts: a run of spaces or dashes inside a route's text is no edge of it. How long reading
    them takes is the patterns' shape, below (never timed here)."""
    assert neuraxial_route({"text": text}, ROUTES) is None


PATTERNS_READ = regex_support.patterns_read(
    codes, {f"Routes.{name}": value for name, value in vars(ROUTES).items() if isinstance(value, re.Pattern)}
)


@pytest.mark.parametrize("name", sorted(PATTERNS_READ))
def test_no_pattern_reading_a_route_reads_a_run_of_characters_once_per_position_in_it(name: str) -> None:
    """review31e: `_as_whole_text` trimmed a route's text by `re.sub` of `^[\\s-]+|[\\s-]+$`, whose second
    branch, searched for, read a run of spaces to its end from each position of it: "IT", 100 KB of spaces,
    "x" took 53 s in neuraxial_route. Its test timed such texts (< 2 s), as route32's timed a text ten times
    as long: a timed test flakes on a loaded machine and passes on a fast one however slow the shape, so the
    shape is told from each pattern's parsed form instead (tests/regex_support.py: a repeat a searched
    pattern may start on and then fail after, two repeats one after the other that read the same
    characters, a repeat of a repeat), for every pattern service/codes.py holds, builds, or passes to `re`."""
    pattern, searched = PATTERNS_READ[name]
    assert regex_support.backtracking(pattern, searched) == [], pattern.pattern


def test_the_patterns_read_are_the_modules_and_the_routes() -> None:
    """What the test above reads: the patterns the module holds and those the Routes compile, each searched
    for or matched as service/codes.py calls it (review31e's fix matches `_EDGE_DASHES` from an edge)."""
    assert {
        "_ROUTE_WORD",
        "_EDGE_DASHES",
        "_CLOSING",
        "Routes.devices",
        "Routes.unsaid",
    } <= PATTERNS_READ.keys()
    assert PATTERNS_READ["_EDGE_DASHES"][1] is False  # matched at an edge, never searched for
    assert PATTERNS_READ["Routes.devices"][1] is True  # finditer
    assert PATTERNS_READ["_SENTENCE_AFTER"][1] is False  # matched right after a negation, never searched for
    assert PATTERNS_READ["_SENTENCE_AFTER_ABBREVIATED"][1] is False  # matched at "no."'s own dot


@pytest.mark.parametrize(
    ("pattern", "searched", "quadratic"),
    [
        # review31e: `_EDGE_DASHES` as 65b5dfa found it, read with `re.sub`
        (rf"^[\s{codes.HYPHENS}]+|[\s{codes.HYPHENS}]+$", True, True),
        (rf"[\s{codes.HYPHENS}]*", False, False),  # as 65b5dfa made it, matched from each edge
        (r"\s*\)", True, True),  # review32c's variant q1: `_CLOSING` searched for to the text's end
        (r"\s*\)", False, False),
        (r"\s*\s*\)", False, True),  # two repeats reading the same characters, then what may fail
        (r"(?:\s+-?)+\)", False, True),  # a repeat of a repeat, its iterations meeting on a space
        (r"\w+(?:[.'-]\w+)*\.?", True, False),  # `_ROUTE_WORD`: nothing after its repeats can fail
        (r"\s*,\s*", False, False),
        (r"\s*,\s*", True, True),
        (r"x[^y]*y", True, True),  # a repeat reading what may start another match
        (codes._SENTENCE_AFTER.pattern, False, False),  # matched right after a negation, as codes.py reads it
        (codes._SENTENCE_AFTER.pattern, True, True),  # searched for, a run of spaces read from each of them
        (r"\.\s+[^\W\d_]+\b", False, False),  # codes._SENTENCE_AFTER_ABBREVIATED, matched at a dot
        (r"\.\s+[^\W\d_]+\b", True, False),  # searched for too: each match starts at a dot, read once
    ],
)
def test_the_shape_check_tells_the_quadratic_patterns(pattern: str, searched: bool, quadratic: bool) -> None:
    """The check above finds the shape review31e fixed, and the quadratic variant review32c measured
    (quadratic_variants.out), and passes linear ones."""
    assert bool(regex_support.backtracking(re.compile(pattern), searched)) is quadratic


def test_a_route_texts_edges_are_trimmed_of_spaces_and_dashes_as_before() -> None:
    """The whole text is the text without its dots, brackets and phrase marks, trimmed of spaces and dashes
    at both edges only."""
    assert codes._as_whole_text(" \u2014 I.T. - ") == "IT"
    assert codes._as_whole_text("IT - no") == "IT - no"
    assert codes._as_whole_text(" - ") == ""
    assert codes._as_whole_text("") == ""
    assert codes._as_whole_text("\u00a0IT\n") == "IT"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # review30j LOW: "IT" before what the drug is given through (codes.ROUTE_DEVICES) is intrathecal
        ("IT pump", True),
        ("IT catheter", True),
        ("IT infusion", True),
        ("IT Pump", True),
        ("via IT pump", True),
        ("I.T. pump", True),
        ("IT pump (IV contraindicated)", True),
        ("IT pump, not IV", True),
        ("Morphine via IT catheter", True),
        # never "it", the pronoun, nor "IT" before another word; and a negation takes it back
        ("give it via pump", None),
        ("it pump", None),
        ("It pump", None),
        ("IT route", None),
        ("IT pump refill", True),
        ("no IT pump", None),
        ("not via IT pump", None),
        ("IT pump contraindicated", None),
        ("intrathecal pump contraindicated", None),  # what a drug is given through is in the scope too
        ("not via intrathecal catheter", None),
        ("SC via pump", False),
        # review31b: a sentence's end between them ("it", the pronoun, in capitals, then a sentence)
        ("TAKE IT. INFUSION OVER 30 MIN", None),
        ("MIX IT. INFUSION PUMP", None),
        ("IV. MIX IT. INFUSION PUMP", False),
        ("IT. Pump", None),
        ("IT pump. Refill monthly", True),
        ("Refill. I.T. pump", True),
        # the lead's decision on review33c F2: across "via" too
        ("IT via pump", True),
        ("IT via catheter", True),
        ("IT VIA PUMP", True),
        ("Epidural contraindicated. IT via pump", True),
        ("Morphine 1 mg/mL IT via pump", True),
        ("GIVE IT VIA PUMP", True),  # no other route named, as "GIVE IT PUMP"
        ("IV - GIVE IT VIA PUMP", False),  # the pronoun, as "IV - GIVE IT INFUSION"
        ("give it via pump", None),
        ("IT via", None),
        ("IT via port", None),
        ("no IT via pump", None),
        ("IT via pump contraindicated", None),
    ],
)
def test_it_before_what_a_drug_is_given_through_says_intrathecal(text: str, said: bool | None) -> None:
    """review30j: "IT pump" read as no route, "IT" counting only as a route's whole text (s29's decision
    on contract29 (f)). One of `whole_text` as written ("IT", never "it") directly before a word of
    codes.ROUTE_DEVICES ("pump", "catheter", "infusion", any case) says its route too; those words are
    fillers a negation's scope crosses ("IT pump contraindicated" is no route)."""
    assert neuraxial_route({"text": text}, ROUTES) is said


@pytest.mark.parametrize(
    "route", [{"text": "Injection"}, {"coding": [{"system": SCT, "code": "418418000"}]}, {"text": "it"}]
)
def test_a_route_that_tells_nothing_leaves_the_drugs_words_to_decide(route: dict[str, Any]) -> None:
    """An intrathecal baclofen given by a route that tells nothing is the pump's drug, by its own words;
    an oral route still says the drug is another. ("IT" was one such route, review19 H2; it now says
    intrathecal itself: `test_a_route_typed_it_says_intrathecal_whatever_the_drug`.)"""
    order = {"dosageInstruction": [{"route": route}]}
    assert neuraxial_order(order, IT_BACLOFEN, ROUTES) is True
    assert neuraxial_order(order, "insulin regular 100 UNT/ML", ROUTES) is None
    assert neuraxial_order({"dosageInstruction": [{"route": {"text": "oral"}}]}, IT_BACLOFEN, ROUTES) is False


@pytest.mark.parametrize("drug", [IT_BACLOFEN, "insulin regular 100 UNT/ML", "morphine 10 mg"])
def test_a_route_typed_it_says_intrathecal_whatever_the_drug(drug: str) -> None:
    """s29, the lead's decision on contract29 (f): a route whose whole text is "IT" (upper case, trimmed)
    says intrathecal, as SNOMED 72607000 or the word "intrathecal" do; it told nothing before, and only a
    drug's own words made it the pump's (review19 H2's intrathecal baclofen, still so). "it" in lower
    case, or inside longer text ("apply it"), does not count."""
    assert neuraxial_order({"dosageInstruction": [{"route": {"text": "IT"}}]}, drug, ROUTES) is True
    for words in ("it", "apply it"):
        assert neuraxial_order({"dosageInstruction": [{"route": {"text": words}}]}, drug, ROUTES) is (
            True if drug == IT_BACLOFEN else None
        )


@pytest.mark.parametrize(
    ("route", "excluded"),
    [
        ({"text": "IT"}, True),
        ({"text": "intrathecal"}, True),
        (concept(SCT, "72607000", "Intrathecal route"), True),
        ({"text": "it"}, False),
        ({"text": "no intrathecal"}, False),  # review29d L3: a negated route word is no route
        ({"text": "never epidural"}, False),
        ({"text": "Intrathecal (IV contraindicated)"}, True),  # review30h: the bracket's negation is its own
        ({"text": "Intrathecal - IV: avoid"}, True),
        ({"text": "Do not administer intrathecally"}, False),
        ({"text": "No IV - intrathecal only"}, True),
        ({"text": "No IV\u2014intrathecal only"}, True),  # review30h: how it is given is in the scope
        ({"text": "Do not admin. intrathecally"}, False),  # review30j: "admin." ends no sentence
        ({"text": "Intrathecal / IV contraindicated"}, False),  # review30j MEDIUM: a list negated whole
        ({"text": "Not for intravenous, intramuscular, or intrathecal use"}, False),  # review30h L3: a list
        ({"text": "IV and IM contraindicated"}, False),
        ({"text": "IT pump"}, True),  # review30j: "IT" before what the drug is given through
        ({"text": "via IT catheter"}, True),
        ({"text": "give it via pump"}, False),
        # review31b HIGH: a comma before another clause is no list's, whatever "or" closes it
        ({"text": "Not for IV use, for intrathecal or epidural use only"}, True),
        ({"text": "Give intrathecally, IV or IM contraindicated"}, True),
        # review31e: a list whose items say alike how the drug is given is taken back whole
        ({"text": "Not for IV use, IM use, or intrathecal use"}, False),
        ({"text": "Avoid IV route, IM route, or intrathecal route"}, False),
        # route32: review31b L2, L3, L5; review31e L1, L2
        ({"text": "IV - GIVE IT INFUSION OVER 30 MIN"}, False),
        ({"text": "IT-pump"}, True),
        ({"text": "neither IV nor IM, intrathecal only"}, True),
        ({"text": "Not for IV administration, IM, or intrathecal"}, False),
        ({"text": "Not for intravenous (IV), intramuscular (IM), or intrathecal (IT) use"}, False),
        # review32c: the verb rule in a text all in capitals only
        ({"text": "Insulin 100 units/mL: GIVE IT INFUSION via pump"}, True),
        ({"text": "Not for IV (intravenous), IM (intramuscular), or IT (intrathecal) use"}, False),
        ({"text": "INSULIN: GIVE I.T. PUMP"}, True),
        # the lead's decisions, s32 (review32c A, B)
        ({"text": "INSULIN - START IT INFUSION AT 50 MCG/DAY"}, True),
        ({"text": "IV - GIVE IT INFUSION OVER 30 MIN"}, False),
        ({"text": "No IV use, IT, epidural, or SC preferred"}, True),
        # a negation after its words ends its phrase at its sentence's end (s32's stop note)
        ({"text": "Intrathecal contraindicated. Give orally"}, False),
        ({"text": "Intrathecal (IV contraindicated). Oral OK"}, True),
        ({"text": "Intrathecal contraindicated. 0.5 mg IV"}, False),  # a number after the dot (review33c)
        ({"text": "Intrathecal infusion: No. of doses 1"}, True),  # "no." the number (review33c F1)
        ({"text": "IT catheter no. IV"}, True),
        # a route's texts are read together: a coding's display names another route (s32's stop note)
        (_coded_locally("INSULIN - START IT INFUSION AT 50 MCG/DAY", "Subcutaneous"), False),
        (_coded_locally("INSULIN - START IT INFUSION AT 50 MCG/DAY", "Other"), True),
        (_coded_locally("INSULIN: NO IV - START IT INFUSION AT 50 MCG/DAY", "Intravenous"), True),  # F3
        ({"text": "Epidural contraindicated. IT via pump"}, True),  # "IT via pump" (review33c F2)
    ],
)
def test_a_draft_insulin_order_routed_it_beside_a_pump_is_the_excluded_infusate(
    route: dict[str, Any], excluded: bool
) -> None:
    """contract29 (f): a draft insulin order routed "IT" beside a 62362 was not read as the pump's drug,
    so GEHA answered "meets all 14 coverage criteria" where the same order routed by SNOMED 72607000 or the
    word "intrathecal" was "not covered — an excluded infusate is ordered"."""
    insulin = {
        **infusate_request("insulin regular 100 UNT/ML", "5856"),
        "dosageInstruction": [{"route": route}],
    }
    answer = call(meeting_chart(), service_request("62362"), insulin)
    assert (mark_of(answer, "Not a pump for insulin, heparin or chemotherapy") == NOT_MET) is excluded
    assert ("excluded infusate" in coverage_card(answer)["summary"]) is excluded


@pytest.mark.parametrize("route", [{"text": "IT"}, concept(SCT, "418418000", "Intraspinal route")])
def test_an_intrathecal_baclofen_order_is_no_oral_antispasmodic_course(route: dict[str, Any]) -> None:
    it_baclofen = med_request(IT_BACLOFEN, "2025-01-01", "2025-06-01", "stopped", "somnolence")
    it_baclofen["dosageInstruction"] = [{"route": route}]
    oral = [r for r in kpwa_spasticity_chart() if "Oral" not in str(r.get("medicationCodeableConcept"))]
    found = statuses(kaiser([*oral, it_baclofen], drugs=(BACLOFEN_IT,)))
    assert found["kpwa.spasticity.oral-6wk-failed.duration"] != "met"


@pytest.mark.parametrize(
    "words", ["Tablet", "By mouth, with food", "Elixir", "Patch", "Capsule", "Subcutaneously", "inhaler"]
)
def test_a_route_in_the_words_only_the_route_value_sets_held_is_another_route(words: str) -> None:
    """words20 (debt 2): the words of another route are the route value sets' (`route-oral`,
    `route-transdermal`, ...), not a second list in service/codes.py that lacked their dose forms: an
    intrathecal-sounding drug given by a route typed "Tablet" is not the pump's (before: None, and the
    drug's words made it so)."""
    order = {"dosageInstruction": [{"route": {"text": words}}]}
    assert neuraxial_route({"text": words}, ROUTES) is False
    assert neuraxial_order(order, IT_BACLOFEN, ROUTES) is False


@pytest.mark.parametrize(
    "words", ["Injection", "Prefilled syringe", "PO", "IV", "IM", "SC", "SQ", "sublingual", "rectally"]
)
def test_what_the_route_value_sets_say_of_a_route_in_words(words: str) -> None:
    """An injection's words are the injectable route's and an intrathecal drug's alike (`neuraxial_too`):
    they leave the drug's words to decide; "PO", "IV" and the mucosal routes, which only service/codes.py
    knew, are now the route value sets' words and still say another route; so do "IM", "SC" and "SQ"
    (s29 F1: they said nothing, and an intrathecal-sounding drug given subcutaneously was the pump's)."""
    said = neuraxial_route({"text": words}, ROUTES)
    assert said is (None if words in ("Injection", "Prefilled syringe") else False)


def test_a_route_word_added_to_the_data_is_read(tmp_path: Path) -> None:
    """The route words are data: a route value set added to the policies folder (here an otic route)
    makes a route typed so another route, with no change to the code."""
    root = copy_policies(tmp_path)
    (root / "valuesets" / "route-otic.yaml").write_text(
        "id: route-otic\ntitle: Otic route\nreference: route words\ntext: [otic]\n", encoding="utf-8"
    )
    assert neuraxial_route({"text": "Otic"}, ROUTES) is None
    assert neuraxial_route({"text": "Otic"}, load_catalog(root).terminology.routes) is False


@pytest.mark.parametrize("route", ["route-neuraxial", "route-oral", "route-injectable"])
def test_a_policies_folder_without_the_route_words_is_refused(tmp_path: Path, route: str) -> None:
    """words20: the record reads every route value set's words; a folder without the oral or injectable
    one started, and a route typed "Oral" then said nothing (the drug's words decided)."""
    root = copy_policies(tmp_path)
    (root / "valuesets" / f"{route}.yaml").unlink()
    with pytest.raises(ValueSetError, match=rf"the service needs value set\(s\) {route}"):
        load_catalog(root)


def test_a_word_a_route_only_says_must_be_among_its_words(tmp_path: Path) -> None:
    """`route_text_only` (the words a drug's name is not read for: "IV", "PO") names words of the value
    set's `text`; another would be read nowhere."""
    root = copy_policies(tmp_path)
    oral = root / "valuesets" / "route-oral.yaml"
    oral.write_text(oral.read_text(encoding="utf-8").replace("[po, p.o]", "[po, pill]"), encoding="utf-8")
    with pytest.raises(ValueSetError, match="route_text_only: pill not among the value set's text"):
        load_catalog(root)


def _edit_neuraxial(root: Path, old: str, new: str) -> None:
    neuraxial = root / "valuesets" / "route-neuraxial.yaml"
    text = neuraxial.read_text(encoding="utf-8")
    assert old in text
    neuraxial.write_text(text.replace(old, new), encoding="utf-8")


def test_a_whole_route_text_added_to_the_data_is_read(tmp_path: Path) -> None:
    """The texts a route says intrathecal by, whole, are data (`whole_text`): one added ("ITH") is read as
    written, with no change to the code; "IT" taken out says nothing again."""
    root = copy_policies(tmp_path)
    _edit_neuraxial(root, "whole_text: [IT]", "whole_text: [ITH]")
    routes = load_catalog(root).terminology.routes
    assert neuraxial_route({"text": "ITH"}, ROUTES) is None
    assert neuraxial_route({"text": "ITH"}, routes) is True
    assert neuraxial_route({"text": "ith"}, routes) is None
    assert neuraxial_route({"text": "IT"}, routes) is None


@pytest.mark.parametrize("dropped", ["72607000", "404820008"])
def test_the_contracts_neuraxial_route_codes_cannot_be_edited_out(tmp_path: Path, dropped: str) -> None:
    """words21 (debt 4.1): the neuraxial route vocabulary is data (`route-neuraxial`), and contract §2's
    two codes (72607000 intrathecal, 404820008 epidural) must stay in it: a folder without one is
    refused, naming it, rather than read an intrathecal route as another."""
    root = copy_policies(tmp_path)
    _edit_neuraxial(root, f'"{dropped}"', '"26643006"' if dropped == "72607000" else '"46713006"')
    with pytest.raises(
        ValueSetError, match=rf"contract's codes are missing: route-neuraxial: snomed {dropped}"
    ):
        load_catalog(root)


def test_what_a_route_code_says_is_the_neuraxial_value_sets_data(tmp_path: Path) -> None:
    """The codes and words are read from the data, not from constants in service/codes.py: the
    intraspinal route's code moved from `tells_neither` to the set's codes says intrathecal or epidural
    alone; a word added says so too."""
    bare_intraspinal = {"coding": [{"system": SCT, "code": "418418000"}]}
    assert neuraxial_route(bare_intraspinal, ROUTES) is None
    assert neuraxial_route({"text": "Perineural"}, ROUTES) is None
    root = copy_policies(tmp_path)
    _edit_neuraxial(
        root, 'snomed: ["72607000", "404820008"]', 'snomed: ["72607000", "404820008", "418418000"]'
    )
    _edit_neuraxial(root, 'tells_neither: ["418418000"]\n', "")
    _edit_neuraxial(
        root,
        "text: [intrathecal, epidural, intraspinal]",
        "text: [intrathecal, epidural, intraspinal, perineural]",
    )
    routes = load_catalog(root).terminology.routes
    assert neuraxial_route(bare_intraspinal, routes) is True
    assert neuraxial_route({"text": "Perineural"}, routes) is True
    assert neuraxial_route({"text": "not for perineural use"}, routes) is None


def test_the_neuraxial_words_are_no_other_routes_words() -> None:
    """`route-neuraxial` is a route value set, but its words are left out of the other routes' (an
    intrathecal route is no other route)."""
    assert not ROUTES.other.matches_text("intrathecal")
    assert neuraxial_route({"text": "intrathecal"}, ROUTES) is True


def test_a_code_that_tells_neither_cannot_be_one_that_tells(tmp_path: Path) -> None:
    """A code both among the set's codes and among those that tell neither would be read two ways."""
    root = copy_policies(tmp_path)
    _edit_neuraxial(root, 'tells_neither: ["418418000"]', 'tells_neither: ["418418000", "72607000"]')
    with pytest.raises(ValueSetError, match="tells_neither: 72607000 also among the value set's snomed"):
        load_catalog(root)


def test_a_neuraxial_word_ending_in_a_star_is_read_as_any_ending(tmp_path: Path) -> None:
    """review21: a value set's word may end in `*`, any ending (schema, policies/README), but the
    neuraxial words were read as plain text, star and all: `intrathec*` compiled, then matched nothing,
    and a route typed "Intrathecal" no longer said the drug was the pump's."""
    root = copy_policies(tmp_path)
    _edit_neuraxial(root, "text: [intrathecal,", "text: [intrathec*,")
    routes = load_catalog(root).terminology.routes
    assert neuraxial_route({"text": "Intrathecal"}, routes) is True
    assert neuraxial_route({"text": "Oral (not for intrathecal use)"}, routes) is False


def test_a_route_word_after_the_dose_form_across_a_comma_is_the_value_sets_data(tmp_path: Path) -> None:
    """words24: route-oral's `after` words (sublingual, buccal) read across the marks of its `after_across`
    (","): "Tablet, Sublingual" names no oral dose form; without the mark, the tablet is oral again. A mark is
    one character, no letter, digit or space (the schema refuses "and")."""
    name = "buprenorphine 8 mg tablet, sublingual"
    assert not load_catalog().terminology["route-oral"].names_dose_form(name)
    root = copy_policies(tmp_path)
    oral = root / "valuesets" / "route-oral.yaml"
    edit_yaml(oral, lambda raw: raw["not_this"].pop("after_across"))
    assert load_catalog(root).terminology["route-oral"].names_dose_form(name)
    edit_yaml(oral, lambda raw: raw["not_this"].update(after_across=["and"]))
    with pytest.raises(ValueSetError, match=r"after_across"):
        load_catalog(root)


class _CountedWords:
    """Other routes' words that match any text, even an empty one, counting how often they are read."""

    def __init__(self) -> None:
        self.read = 0

    def matches_text(self, text: str) -> bool:
        self.read += 1
        return True


def test_a_dosage_naming_no_route_is_read_once_per_catalog_not_once_per_order() -> None:
    """What a dosage without a route object says is the same for every such dosage (`Routes.unrouted`:
    no code, no words), read when the routes are compiled, not again for each of a chart's orders. Had
    the other routes' words matched an empty text it would say another route, and so it still does."""
    words = _CountedWords()
    routes = Routes(ROUTES.neuraxial, ROUTES.words, ROUTES.tells_neither, words)
    compiled = words.read
    orders = [{"dosageInstruction": [{}, {"route": "oral"}]}, {"dosage": [{"route": None}]}] * 50
    assert {neuraxial_order(order, IT_BACLOFEN, routes) for order in orders} == {False}
    assert words.read == compiled
    assert neuraxial_order({"dosageInstruction": [{}]}, IT_BACLOFEN, ROUTES) is True  # the drug's words
    unsaid = {"dosageInstruction": [{"text": "x"}], "dosage": []}
    assert neuraxial_order(unsaid, "Baclofen oral", ROUTES) is None
