"""Payer routing from Coverage (clinical-data-contract.md §6)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from service.call_day import call_date
from service.catalog import load_catalog
from service.routing import is_medicare, route_coverages
from tests.builders import TODAY
from tests.support import CountedItems

PAYER_ID = "http://idds-crd.org/fhir/sid/payer-id"
PAYERS = load_catalog().payers


def coverage(cid: str, payor: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Coverage",
        "id": cid,
        "status": "active",
        "payor": [payor],
        "beneficiary": {"reference": "Patient/p1"},
        **extra,
    }


def org(oid: str, name: str | None = None, value: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Organization", "id": oid}
    if name:
        resource["name"] = name
    if value:
        resource["identifier"] = [{"system": PAYER_ID, "value": value}]
    return resource


def test_identifier_wins_over_name() -> None:
    routes = route_coverages(
        [coverage("c1", {"reference": "Organization/o1", "display": "Someone Else"})],
        [org("o1", "Misleading Name", "geha")],
        PAYERS,
        TODAY,
    )
    assert [(r.policy_id, r.matched_by) for r in routes] == [
        ("geha-idds-chronic-pain", f"identifier {PAYER_ID}|geha")
    ]
    assert routes[0].payer_display == "GEHA"


def test_name_is_the_fallback() -> None:
    routes = route_coverages(
        [coverage("c1", {"reference": "Organization/o1"})],
        [org("o1", "Government Employees Health Association")],
        PAYERS,
        TODAY,
    )
    assert routes[0].policy_id == "geha-idds-chronic-pain"
    display_only = route_coverages([coverage("c2", {"display": "geha"})], [], PAYERS, TODAY)
    assert display_only[0].policy_id == "geha-idds-chronic-pain"


@pytest.mark.parametrize(
    ("payor", "routed_to"),
    [
        ("https://ehr.example.org/fhir/Organization/o1", "geha-idds-chronic-pain"),  # the call's server
        ("Organization/o1", "geha-idds-chronic-pain"),
        ("https://payer.example.org/fhir/Organization/o1", None),  # another server's o1: not this one
    ],
)
def test_a_payor_naming_another_servers_organization_is_not_read_by_this_servers_of_that_id(
    payor: str, routed_to: str | None
) -> None:
    """Review s16 fix-a (as F-4 for Coverage references): the same id on another server names another
    Organization, so this server's o1 (GEHA by identifier) says nothing of that payor's payer."""
    routes = route_coverages(
        [coverage("c1", {"reference": payor})],
        [org("o1", value="geha")],
        PAYERS,
        TODAY,
        "https://ehr.example.org/fhir",
    )
    assert [r.policy_id for r in routes] == [routed_to]


def test_contained_organization_and_logical_identifier() -> None:
    contained = coverage("c1", {"reference": "#payer"}, contained=[org("payer", value="geha")])
    logical = coverage("c2", {"identifier": {"system": PAYER_ID, "value": "geha"}})
    assert [r.policy_id for r in route_coverages([contained, logical], [], PAYERS, TODAY)] == [
        "geha-idds-chronic-pain",
        "geha-idds-chronic-pain",
    ]


def test_every_active_coverage_is_routed_and_inactive_ones_are_not() -> None:
    cancelled = coverage("c3", {"display": "GEHA"}, status="cancelled")
    routes = route_coverages(
        [coverage("c1", {"display": "GEHA"}), coverage("c2", {"display": "Medicaid"}), cancelled],
        [],
        PAYERS,
        TODAY,
    )
    assert [(r.coverage, r.policy_id) for r in routes] == [
        ("Coverage/c1", "geha-idds-chronic-pain"),
        ("Coverage/c2", None),
    ]
    assert routes[1].payer_display == "Medicaid"


@pytest.mark.parametrize(
    ("period", "ended"),
    [
        ({"end": "2026-10-22"}, "ended 2026-10-22"),  # ended 30 days before the call
        ({"end": "2026-11-20"}, "ended 2026-11-20"),  # ended the day before
        ({"end": "2026-11-21"}, None),  # ends on the call's day: that day is covered
        # an instant: 17:00 UTC the day before, said as the instant in UTC, not its own date, which in
        # its +09:00 offset is the call's day (session review s18 R-4)
        ({"end": "2026-11-21T02:00:00+09:00"}, "ended 2026-11-20 17:00 UTC"),
        ({"end": "2026-11-21T11:59:30Z"}, "ended 2026-11-21 11:59:30 UTC"),
        ({"end": "2026-11-21T12:00:00Z"}, None),  # the instant the call is taken at (call_day.midday)
        ({"end": "2026-11"}, None),  # a month: to its last day
        ({"end": "2026-10"}, "ended 2026-10-31"),
        ({"end": "2026"}, None),  # a year: to 31 December
        ({"start": "2026-11-22"}, None),  # begins the day after: the order may be carried out then
        ({"start": "2026-11-21T23:00:00Z", "end": "2027-06-30"}, None),
        ({"start": "2026-12"}, None),
        ({"start": "2020-01-01"}, None),
        ({"end": "soon"}, None),  # an end that cannot be read bounds nothing
        ({}, None),
    ],
)
def test_a_coverage_whose_period_ended_before_the_calls_day_is_not_judged(
    period: dict[str, str], ended: str | None
) -> None:
    """Contract §6: "The payer comes from the single relevant `Coverage`". An active Coverage whose
    period ended 30 days ago was routed and judged (contract review s17 F5): it is not the patient's
    coverage for an order placed today, so no policy judges it; as the call's only Coverage it is
    routed to be answered not active (inferno review s18 K-1). One that begins later is judged
    (session review s17 F-2: an order placed in December under the plan that begins in January)."""
    [route] = route_coverages([coverage("c1", {"display": "GEHA"}, period=period)], [], PAYERS, TODAY)
    assert (route.coverage, route.inactive) == ("Coverage/c1", ended)
    assert (route.policy_id is None) == (ended is not None)


@pytest.mark.parametrize(
    ("found", "inactive"),
    [
        ([("c1", "cancelled", {})], ["cancelled"]),
        ([("c1", "draft", {})], ["status draft"]),
        ([("c1", "entered-in-error", {})], []),  # recorded in error: no Coverage at all
        ([("c1", "cancelled", {}), ("c2", "entered-in-error", {})], ["cancelled"]),
        ([("c1", "cancelled", {}), ("c2", "active", {"end": "2020-12-31"})], []),  # two: not one to name
        ([("c1", "cancelled", {}), ("c2", "active", {})], [None]),  # an active one: it is routed
    ],
)
def test_the_calls_one_coverage_not_active_is_routed_saying_why(
    found: list[tuple[str, str, dict[str, str]]], inactive: list[str | None]
) -> None:
    coverages = [{**coverage(i, {"display": "GEHA"}, period=p), "status": status} for i, status, p in found]
    routes = route_coverages(coverages, [], PAYERS, TODAY)
    assert [r.inactive for r in routes] == inactive


CALL_AT = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "zone", "routed"),
    [
        ({"end": "2026-12-31T23:59:59-05:00"}, "UTC", True),  # ends at 04:59:59 UTC on 1 January
        ({"end": "2027-01-01T02:59:59Z"}, "UTC", False),  # a second before the call
        ({"end": "2027-01-01T03:00:00+00:00"}, "UTC", True),  # at the call's instant: still in force
        ({"end": "2026-12-31T21:00:00-05:00"}, "America/New_York", False),  # 02:00 UTC: an hour before
        ({"end": "2026-12-31"}, "America/New_York", True),  # a date: New York's 31 December, whole
        ({"end": "2026-12-31"}, "UTC", False),  # UTC's day is 1 January
        ({"end": "2026-12"}, "America/New_York", True),  # a month: to its last day, the service's
        ({"start": "2027-01-01T00:00:00+14:00"}, "UTC", True),  # began at 10:00 UTC on 31 December
        ({"start": "2027-01-01T04:00:01+01:00"}, "UTC", False),  # begins a second after the call
        ({"start": "2027-01-01T04:00:00+01:00"}, "UTC", True),  # begins at the call's instant
        ({"start": "2027-01-01"}, "America/New_York", False),  # a date: New York's day is 31 December
        ({"start": "2027-01-01"}, "UTC", True),
    ],
)
def test_a_coverage_period_bound_written_as_an_instant_is_compared_with_the_calls_instant(
    period: dict[str, str], zone: str, routed: bool
) -> None:
    """Session review s17 F-8: a dateTime bound of a Coverage period is the instant it names, compared
    with the call's instant; a date or partial date is whole days of the service's calendar (the call's
    day in its `timezone`, service/call_day.py). A plan ending 23:59:59 in New York was read as ended at
    03:00 UTC on 1 January, and one beginning at midnight in Kiribati as not begun at noon UTC on 31
    December. A Coverage in force all along stands beside it, so one not yet begun is left out."""
    held = coverage("held", {"display": "GEHA"}, period={"start": "2020-01-01"})
    probe = coverage("c1", {"display": "GEHA"}, period=period)
    today = call_date(zone, CALL_AT)
    found = [r.coverage for r in route_coverages([probe, held], [], PAYERS, today, now=CALL_AT)]
    assert ("Coverage/c1" in found) is routed


@pytest.mark.parametrize(
    ("plans", "routed"),
    [
        (("current", "next"), ["Coverage/current"]),  # next year's plan recorded ahead: not a second one
        (("next",), ["Coverage/next"]),  # a plan that begins later, and none before it: the order's
    ],
)
def test_a_plan_recorded_ahead_of_its_year_is_relevant_only_without_one_in_force(
    plans: tuple[str, ...], routed: list[str]
) -> None:
    """Review s17 review2 N-3: with next year's plan recorded, a CRD 2.2 call was refused for "2 active
    Coverages"; and (F-2) an order placed before the only plan begins is judged by it."""
    periods = {"current": {"start": "2020-01-01"}, "next": {"start": "2027-01-01"}}
    found = [coverage(p, {"display": "GEHA"}, period=periods[p]) for p in plans]
    assert [r.coverage for r in route_coverages(found, [], PAYERS, TODAY)] == routed


def test_an_ended_coverage_leaves_the_one_that_replaced_it() -> None:
    """The review's case: GEHA ended 30 days ago, Cohere since 29 days ago: Cohere alone judges."""
    ended = coverage("geha", {"display": "GEHA"}, period={"start": "2024-01-01", "end": "2026-10-22"})
    current = coverage("cohere", {"display": "Cohere Health"}, period={"start": "2026-10-23"})
    routes = route_coverages([ended, current], [], PAYERS, TODAY)
    assert [(r.coverage, r.policy_id) for r in routes] == [
        ("Coverage/cohere", "cohere-intrathecal-pain-pumps")
    ]


SOPT_OID = "urn:oid:2.16.840.1.113883.3.221.5"
SOPT_URL = "https://nahdo.org/sopt"


def typed(system: str | None, code: str | None, display: str | None = None) -> dict[str, Any]:
    coding = {k: v for k, v in {"system": system, "code": code, "display": display}.items() if v is not None}
    return {"type": {"coding": [coding]}}


def plan(name: str) -> dict[str, Any]:
    return {"class": [{"type": {"text": "plan"}, "value": "PLAN-1", "name": name}]}


@pytest.mark.parametrize("system", [SOPT_OID, SOPT_URL])
@pytest.mark.parametrize("code", ["1", "11", "121", " 111 "])
def test_a_coded_sopt_medicare_type_is_medicare(system: str, code: str) -> None:
    assert is_medicare(coverage("c1", {}, **typed(system, code), **plan("Commercial Gold")))


@pytest.mark.parametrize("system", [SOPT_OID, SOPT_URL])
@pytest.mark.parametrize("code", ["5", "81", "2", "1111", "1A"])
def test_any_other_coded_type_is_not_medicare_whatever_the_names_say(system: str, code: str) -> None:
    named = coverage("c1", {}, **typed(system, code, "Medicare"), **plan("Kaiser Medicare Advantage"))
    named["type"]["text"] = "Medicare Advantage"
    assert not is_medicare(named)


def test_a_type_coded_in_another_system_is_coded_and_says_nothing_of_medicare() -> None:
    act_code = typed("http://terminology.hl7.org/CodeSystem/v3-ActCode", "PUBLICPOL", "public healthcare")
    assert not is_medicare(coverage("c1", {}, **act_code, **plan("Medicare Advantage")))
    assert not is_medicare(coverage("c2", {}, **typed(None, "1"), **plan("Medicare Advantage")))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (plan("Kaiser Medicare Advantage"), True),
        ({"type": {"text": "MEDICARE"}}, True),
        (typed(SOPT_OID, None, "Medicare Part B"), True),  # a display without a code is only a name
        ({"type": {"coding": [{"system": SOPT_OID, "code": "  "}]}, **plan("Medicare")}, True),
        (plan("Commercial (non-Medicare)"), False),
        (plan("Commercial non Medicare PPO"), False),
        ({"type": {"text": "not Medicare"}}, False),
        ({"type": {"text": "Commercial PPO"}}, False),
        (plan("Medicareplus"), False),
        ({"class": [{"type": {"text": "group"}, "value": "MEDICARE", "name": "Acme staff"}]}, False),
        (plan("Commercial (non\u2013Medicare)"), False),  # an en dash
        ({"type": {"text": "Non\u2011Medicare commercial"}}, False),  # a non-breaking hyphen
        ({"type": {"text": "non\u00a0Medicare"}}, False),  # a no-break space
        ({"type": {"text": "Non\u00adMedicare"}}, False),  # a soft hyphen
        ({"type": {"text": "Non-\u200bMedicare"}}, False),  # a zero-width space
        (
            {
                "class": [
                    {"type": {"coding": [{"code": "group"}]}, "value": "G1", "name": "Medicare retirees"}
                ]
            },
            True,
        ),
        (  # contract §6: plan or group names; an Rx plan says nothing of the medical product
            {
                "class": [
                    {"type": {"coding": [{"code": "rxplan"}]}, "value": "D1", "name": "Medicare Part D Rx"},
                    {"type": {"coding": [{"code": "plan"}]}, "value": "P1", "name": "Kaiser Commercial"},
                ]
            },
            False,
        ),
    ],
)
def test_without_a_coded_type_the_names_decide(extra: dict[str, Any], expected: bool) -> None:
    assert is_medicare(coverage("c1", {}, **extra)) is expected


@pytest.mark.parametrize(
    ("extra", "policy"),
    [
        (typed(SOPT_OID, "1"), "cms-ncd-280-14"),
        ({**typed(SOPT_URL, "5"), **plan("Kaiser Medicare Advantage")}, "kpwa-implanted-infusion-pumps"),
        (plan("Kaiser Medicare Advantage"), "cms-ncd-280-14"),
        (plan("Kaiser Commercial (non-Medicare)"), "kpwa-implanted-infusion-pumps"),
    ],
)
def test_medicare_products_go_to_the_medicare_policy(extra: dict[str, Any], policy: str) -> None:
    cov = coverage("c1", {"identifier": {"system": PAYER_ID, "value": "kpwa"}}, **extra)
    route = route_coverages([cov], [], PAYERS, TODAY)[0]
    assert (route.policy_id, route.medicare) == (policy, policy == "cms-ncd-280-14")


@pytest.mark.parametrize("payer", ["geha", "cbc", "cohere", "cmm210"])
def test_a_medicare_product_of_a_payer_without_a_medicare_policy_goes_to_its_policy(payer: str) -> None:
    """Contract §6: a payer's medicare_policy applies instead of its policy; a payer with none keeps
    its own policy for its Medicare products (the product is still said to be Medicare)."""
    cov = coverage("c1", {"identifier": {"system": PAYER_ID, "value": payer}}, **typed(SOPT_OID, "1"))
    route = route_coverages([cov], [], PAYERS, TODAY)[0]
    expected = next(p.policy_id for p in PAYERS if p.key == payer)
    assert (route.policy_id, route.medicare) == (expected, True)


@pytest.mark.parametrize(
    ("extra", "elsewhere"),
    [
        (plan("FEP Blue Standard (Federal Employee Program PPO)"), True),
        (plan("Federal Employee Program"), True),
        ({"type": {"text": "fep ppo"}}, True),
        (plan("Capital Blue Cross PPO"), False),
        (plan("FEPlus Dental"), False),  # not the word
        (plan("Capital PPO non-FEP"), False),
        (plan("PPO (not FEP)"), False),
        (plan("Non\u2011Federal Employee Program PPO"), False),  # a non-breaking hyphen
        (plan("Blue Cross and Blue Shield Service Benefit Plan"), True),  # FEP's own name
    ],
)
def test_a_product_the_policy_sends_elsewhere_is_not_judged_here(
    extra: dict[str, Any], elsewhere: bool
) -> None:
    """MP 1.058, Product Variations: "FEP PPO - Refer to FEP Medical Policy Manual."."""
    cov = coverage("c1", {"identifier": {"system": PAYER_ID, "value": "cbc"}}, **extra)
    route = route_coverages([cov], [], PAYERS, TODAY)[0]
    if elsewhere:
        assert route.policy_id is None
        assert (
            route.elsewhere is not None
            and "FEP members; refer to the FEP Medical Policy Manual" in route.elsewhere
        )
    else:
        assert (route.policy_id, route.elsewhere) == ("cbc-mp-1-058", None)


def test_odd_shapes_do_not_break_routing() -> None:
    odd = {"resourceType": "Coverage", "id": "c9", "payor": "GEHA", "type": 5, "class": {"x": 1}}
    assert route_coverages([odd], ["not a resource"], PAYERS, TODAY)[0].policy_id is None  # type: ignore[list-item]


def test_payers_table_must_name_existing_policies(tmp_path: Any) -> None:
    from service.routing import RoutingError, load_payers

    path = tmp_path / "payers.yaml"
    path.write_text("payers:\n  - key: x\n    name: X\n    names: [X]\n    policy: nowhere\n")
    with pytest.raises(RoutingError, match=r"payers.yaml:5: no policy with id 'nowhere'"):
        load_payers(path, load_catalog().successions, TODAY)


def test_each_route_names_the_payer_as_a_reference_usable_outside_the_coverage() -> None:
    fetched = coverage("c1", {"reference": "Organization/o1"})
    contained = coverage("c2", {"reference": "#payer"}, contained=[org("payer", "GEHA", value="geha")])
    logical = coverage("c3", {"identifier": {"system": PAYER_ID, "value": "geha"}, "display": "GEHA"})
    routes = route_coverages([fetched, contained, logical], [org("o1", "GEHA", "geha")], PAYERS, TODAY)
    assert [r.payer_reference for r in routes] == [
        {"reference": "Organization/o1", "display": "GEHA"},
        {"type": "Organization", "display": "GEHA", "identifier": {"system": PAYER_ID, "value": "geha"}},
        {"type": "Organization", "display": "GEHA", "identifier": {"system": PAYER_ID, "value": "geha"}},
    ]


def test_many_payors_of_contained_organizations_read_the_contained_list_once() -> None:
    """Each `#id` payor is looked up in an index of the Coverage's contained resources, not by a scan
    per payor: 300 of each read 300 items, not 90,000 (security review S-2, the routing case)."""
    many = coverage("c1", {"reference": "#p0"})
    many["payor"] = [{"reference": f"#p{i}"} for i in range(300)]
    many["contained"] = CountedItems([org(f"p{i}", value="geha") for i in range(300)])
    routes = route_coverages([many], [], PAYERS, TODAY)
    assert {r.policy_id for r in routes} == {"geha-idds-chronic-pain"}
    assert many["contained"].read == 300


URN = "urn:uuid:1b8c2f7e-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    ("oid", "requester"),
    [
        ("o1", {"reference": "Organization/o1", "display": "GEHA"}),
        (
            None,
            {"type": "Organization", "display": "GEHA", "identifier": {"system": PAYER_ID, "value": "geha"}},
        ),
    ],
    ids=["with-id", "without-id"],
)
def test_a_payor_by_urn_uuid_is_the_bundle_entry_of_that_full_url(oid: str | None, requester: Any) -> None:
    """A bundle-local reference (`urn:uuid:`) names the entry of the request's Bundles with that fullUrl
    (`bundle_local`): routed by it (review23b L5: before, "unnamed payer", routed nowhere). The payer's
    Reference used outside the request (a Task's requester) is its `Organization/id`, or with none
    (an entry only a urn names) its name and identifier: never the urn, which names nothing there."""
    organization = org("o1", "GEHA", "geha")
    if oid is None:
        del organization["id"]
    routes = route_coverages(
        [coverage("c1", {"reference": URN})], [], PAYERS, TODAY, bundle_local={URN: organization}
    )
    assert [(r.policy_id, r.payer_reference) for r in routes] == [("geha-idds-chronic-pain", requester)]
