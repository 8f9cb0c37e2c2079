"""A revised policy deployed ahead of its date (`supersedes`): each call is judged by the version in
force on its date, the switch happens on that date with no redeploy, and what cannot be a line of
versions ordered by date is refused with the file and line (service/succession.py)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.catalog import Catalog, cached_catalog, compile_catalog, load_catalog
from service.cli import main
from service.routing import RoutingError, route_coverages
from service.succession import SuccessionError
from tests.builders import TODAY
from tests.catalog_support import copy_policies, name_policy, republish_cmm210
from tests.demo_support import answer, packaged_sample
from tests.support import open_settings

V2, V3, V4 = "cmm-210-idds", "cmm-210-idds-v3", "cmm-210-idds-v4"
SWITCH = date(2027, 1, 1)  # V3 takes effect
REPLACEMENT = "order-select-62362-demo-cmm210-replacement"  # a CMM-210 member's pump replacement: meets
SPASTICITY = "order-select-62362-demo-cmm210-spasticity"  # a CMM-210 member's baclofen pump
PAYER_ID = "http://idds-crd.org/fhir/sid/payer-id"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The shipped policies with CMM-210 version 3, taking effect on SWITCH, beside version 2."""
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, SWITCH, supersedes=V2)
    return root


@pytest.fixture
def app(root: Path) -> Flask:
    return create_app(open_settings(), load_catalog(root))


def cmm210_coverage(medicare: bool = False) -> dict[str, object]:
    coverage: dict[str, object] = {
        "resourceType": "Coverage",
        "id": "c1",
        "status": "active",
        "payor": [{"identifier": {"system": PAYER_ID, "value": "kpwa" if medicare else "cmm210"}}],
    }
    if medicare:
        coverage["type"] = {"coding": [{"system": "https://nahdo.org/sopt", "code": "1"}]}
    return coverage


@pytest.mark.parametrize(
    ("day", "judged_by"),
    [(SWITCH - timedelta(days=1), V2), (SWITCH, V3), (date(2030, 1, 1), V3), (date(2019, 1, 1), V2)],
    ids=["the-day-before", "the-day-it-takes-effect", "later", "before-every-version"],
)
@pytest.mark.parametrize("named", [V2, V3])
def test_a_payer_naming_any_version_is_routed_to_the_one_in_force(
    root: Path, named: str, day: date, judged_by: str
) -> None:
    name_policy(root, "cmm210", named)
    catalog = compile_catalog(root, TODAY)
    [route] = route_coverages([cmm210_coverage()], [], catalog.payers, day)
    assert route.policy_id == judged_by


def test_a_medicare_policy_naming_a_version_is_routed_to_the_one_in_force(root: Path) -> None:
    name_policy(root, "kpwa", V3, key="medicare_policy")
    catalog = compile_catalog(root, TODAY)
    before = route_coverages([cmm210_coverage(medicare=True)], [], catalog.payers, SWITCH - timedelta(days=1))
    after = route_coverages([cmm210_coverage(medicare=True)], [], catalog.payers, SWITCH)
    assert [(r.policy_id, r.medicare) for r in before + after] == [(V2, True), (V3, True)]


@pytest.mark.parametrize(("day", "judged_by"), [(SWITCH - timedelta(days=1), V2), (SWITCH, V3)])
def test_the_call_is_judged_and_its_cards_name_the_version_in_force(
    app: Flask, day: date, judged_by: str
) -> None:
    """The determination, its cards and CRD 2.2's policy-link detail all name the version that judged."""
    body = packaged_sample(REPLACEMENT)
    body["extension"] = {"davinci-crd.requestedVersion": "2.2"}
    outcome = answer(app, body, day)
    policy = app.extensions["idds_crd"].environment.catalog.policies[judged_by]
    assert {d.policy_id for d in outcome.determinations} == {judged_by}
    assert {d.policy_version for d in outcome.determinations} == {policy.version}
    text = str(outcome.response)
    assert f"/policies/{judged_by}'" in text and policy.version in text
    other = next(v for v in (V2, V3) if v != judged_by)
    assert f"/policies/{other}'" not in text
    assert f"policy as checked: {policy.title} ({policy.version})" in text


def signed_without_assessments() -> dict[str, Any]:
    """The CMM-210 spasticity sample signed, its chart holding no assessment or score: its
    documentation is asked for on a form (CRD asks for it on order-sign)."""
    body = packaged_sample(SPASTICITY)
    body["hook"] = "order-sign"
    body["context"].pop("selections")
    for key in ("observations", "questionnaireResponses"):
        body["prefetch"][key] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    return body


@pytest.mark.parametrize(("day", "judged_by"), [(SWITCH - timedelta(days=1), V2), (SWITCH, V3)])
def test_the_documentation_form_asked_for_is_the_version_in_force(
    app: Flask, day: date, judged_by: str
) -> None:
    outcome = answer(app, signed_without_assessments(), day)
    forms = re.findall(r"Questionnaire/(cmm-210-idds[a-z0-9-]*?)-documentation", str(outcome.response))
    assert forms and set(forms) == {judged_by}


def test_every_version_is_published_with_its_page_its_form_and_its_standing(tmp_path: Path) -> None:
    """Today (whenever the suite runs before 2099): version 3 is in force, 2 superseded, 4 to come."""
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, date(2020, 1, 1), supersedes=V2)
    republish_cmm210(root, V4, date(2099, 1, 1), supersedes=V3, number=4)
    client = create_app(open_settings(), load_catalog(root)).test_client()
    pages = {v: client.get(f"/policies/{v}").get_data(as_text=True) for v in (V2, V3, V4)}
    assert f"superseded: &#39;{V3}&#39; replaced it on 2020-01-01" in pages[V2]
    assert f"in force; &#39;{V4}&#39; replaces it on 2099-01-01" in pages[V3]
    assert f"not yet in force: takes effect on 2099-01-01; until then &#39;{V3}&#39;" in pages[V4]
    assert "Version 4.0.2099" in pages[V4]  # its own source document, from its own folder
    for version in (V2, V3, V4):
        assert client.get(f"/fhir/Questionnaire/{version}-documentation").status_code == 200


def test_the_audit_record_names_the_version_in_force(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, date(2020, 1, 1), supersedes=V2)
    republish_cmm210(root, V4, date(2099, 1, 1), supersedes=V3, number=4)
    catalog = load_catalog(root)
    app = create_app(open_settings(), catalog)
    body = packaged_sample(REPLACEMENT)
    assert app.test_client().post("/cds-services/idds-crd-order-select", json=body).status_code == 200
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    [payer] = record["payers"]
    assert (payer["policy_id"], payer["policy_version"]) == (V3, catalog.policies[V3].version)


def test_the_prefetch_templates_cover_every_version(tmp_path: Path) -> None:
    """Discovery asks for what every compiled policy reads, versions not yet in force included."""
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, date(2099, 1, 1), supersedes=V2)
    catalog = load_catalog(root)
    services = create_app(open_settings(), catalog).test_client().get("/cds-services").get_json()
    declared = " ".join(
        next(s for s in services["services"] if s["hook"] == "order-sign")["prefetch"].values()
    )
    for criterion in catalog.policies[V3].all_criteria():
        for test in criterion.tests:
            for code in test.params.get("loinc", ()):
                assert f"http://loinc.org|{code}" in declared, (criterion.id, code)


def refused(root: Path, day: date = TODAY) -> str:
    with pytest.raises((SuccessionError, RoutingError)) as caught:
        compile_catalog(root, day)
    return str(caught.value)


def line_of(path: Path, key: str) -> int:
    return next(
        i for i, row in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if row.startswith(key)
    )


def test_a_supersedes_naming_no_policy_is_refused(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    path = republish_cmm210(root, V3, SWITCH, supersedes="cmm-210-idds-v1")
    expected = f"{V3}.yaml:{line_of(path, 'supersedes:')}: supersedes: no policy with id 'cmm-210-idds-v1'"
    assert refused(root) == expected


def test_a_cycle_is_refused(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, SWITCH, supersedes=V4)
    republish_cmm210(root, V4, date(2028, 1, 1), supersedes=V3, number=4)
    message = refused(root)
    assert re.fullmatch(
        rf"cmm-210-idds-v[34]\.yaml:\d+: supersedes: the versions supersede one another: "
        rf"({V3} → {V4} → {V3}|{V4} → {V3} → {V4})",
        message,
    ), message


def test_two_versions_superseding_one_policy_are_refused(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    first = republish_cmm210(root, V3, SWITCH, supersedes=V2)
    second = republish_cmm210(root, V4, date(2028, 1, 1), supersedes=V2, number=4)
    assert refused(root) == (
        f"{V4}.yaml:{line_of(second, 'supersedes:')}: supersedes: '{V2}' is already superseded by '{V3}' "
        f"({V3}.yaml:{line_of(first, 'supersedes:')}); one version is replaced by one other"
    )


@pytest.mark.parametrize("effective", [date(2019, 8, 1), date(2018, 1, 1)], ids=["same-day", "earlier"])
def test_a_version_not_taking_effect_after_the_one_it_supersedes_is_refused(
    tmp_path: Path, effective: date
) -> None:
    root = copy_policies(tmp_path)
    path = republish_cmm210(root, V3, effective, supersedes=V2)
    assert refused(root) == (
        f"{V3}.yaml:{line_of(path, 'effective:')}: effective: {effective.isoformat()} is not after "
        f"2019-08-01, when '{V2}', which it supersedes, took effect"
    )


def test_a_payer_whose_policy_has_no_version_in_force_is_refused(tmp_path: Path) -> None:
    """A policy not yet in force, with nothing in force beside it: the payer's members would be
    judged by a text that does not apply yet."""
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, SWITCH)  # not a version of anything
    name_policy(root, "cmm210", V3)
    line = line_of(root / "payers.yaml", f"  policy: {V3}")
    message = refused(root, SWITCH - timedelta(days=1))
    assert message.startswith(
        f"payers.yaml:{line}: no policy of the chain of '{V3}' is in force on 2026-12-31: the first, "
        f"'{V3}', takes effect on 2027-01-01"
    ), message
    assert V3 in compile_catalog(root, SWITCH).policies  # on its date it may stand alone


def test_a_cached_catalog_is_checked_again_on_another_day(tmp_path: Path) -> None:
    """The catalog cache kept the check of one day: a process starting on the day before (or in a
    time zone still on it) took the entry and judged by a version not yet in force (review s16 R-6)."""
    root = copy_policies(tmp_path / "policies")
    republish_cmm210(root, V3, SWITCH)  # not a version of anything: in force from SWITCH alone
    name_policy(root, "cmm210", V3)
    cache = tmp_path / "cache"
    assert V3 in cached_catalog(root, cache, SWITCH).policies
    with pytest.raises(RoutingError, match="is in force on 2026-12-31"):
        cached_catalog(root, cache, SWITCH - timedelta(days=1))
    assert V3 in cached_catalog(root, cache, SWITCH).policies


NEW_YORK_EVENING = datetime(2027, 1, 1, 3, 0, tzinfo=UTC)  # 22:00 EST on 31 December 2026


@pytest.mark.parametrize(("zone", "judged_by"), [("UTC", V3), ("America/New_York", V2)])
def test_the_calls_date_is_the_day_in_the_configured_timezone(
    root: Path, monkeypatch: pytest.MonkeyPatch, zone: str, judged_by: str
) -> None:
    """Version 3 takes effect on 1 January: at 22:00 EST on 31 December it is in force by the UTC
    date, not yet in New York's (review s16 OPS-2). The call, its audit record and the policy page
    all go by the configured zone's day."""
    monkeypatch.setattr("service.call_day._now", lambda: NEW_YORK_EVENING)
    app = create_app(open_settings(timezone=zone), load_catalog(root))
    body = packaged_sample(REPLACEMENT)
    assert app.test_client().post("/cds-services/idds-crd-order-select", json=body).status_code == 200
    [record] = app.extensions["idds_crd"].stores.audit.find(body["hookInstance"])
    assert [payer["policy_id"] for payer in record["payers"]] == [judged_by]
    page = app.test_client().get(f"/policies/{V3}").get_data(as_text=True)
    assert ("not yet in force" in page) == (judged_by == V2)


def test_policies_check_dates_its_standings_by_the_configured_timezone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, SWITCH, supersedes=V2)
    monkeypatch.setattr("service.call_day._now", lambda: NEW_YORK_EVENING)
    config = tmp_path / "config.yaml"
    config.write_text("timezone: America/New_York\n", encoding="utf-8")
    assert main(["policies", "check", str(root), "--config", str(config)]) == 0
    assert f"  {V3}: CMM-210, 42 criteria, Version 3.0.2027, effective January 1, 2027 (not yet in force" in (
        capsys.readouterr().out
    )
    config.write_text("timezone: UTC\n", encoding="utf-8")
    assert main(["policies", "check", str(root), "--config", str(config)]) == 0
    assert f"  {V3}: CMM-210, 42 criteria, Version 3.0.2027, effective January 1, 2027 (in force" in (
        capsys.readouterr().out
    )


def test_policies_check_lists_each_versions_standing_and_refuses_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_policies(tmp_path)
    republish_cmm210(root, V3, date(2099, 1, 1), supersedes=V2)
    assert main(["policies", "check", str(root)]) == 0
    listed = capsys.readouterr().out
    assert (
        f"  {V3}: CMM-210, 42 criteria, Version 3.0.2099, effective January 1, 2099 (not yet in force: "
        f"takes effect on 2099-01-01; until then '{V2}' judges orders)"
    ) in listed
    assert f"  {V2}: CMM-210, 42 criteria, Version 2.0.2019, effective August 1, 2019 (in force; " in listed
    republish_cmm210(root, V4, date(2099, 6, 1), supersedes="nowhere", number=4)
    assert main(["policies", "check", str(root)]) == 1
    assert re.search(rf"{V4}\.yaml:\d+: supersedes: no policy with id 'nowhere'", capsys.readouterr().err)


def test_the_shipped_policies_are_chains_of_one_judged_as_before(compiled_catalog: Catalog) -> None:
    """No shipped policy supersedes another: every payer is judged by the policy it names, whatever
    the call's date."""
    for policy_id in compiled_catalog.policies:
        assert compiled_catalog.successions[policy_id].members == (
            (compiled_catalog.policies[policy_id].currency.effective, policy_id),
        )
    for payer in compiled_catalog.payers:
        for day in (date(2000, 1, 1), TODAY, date(2100, 1, 1)):
            assert payer.policy_on(day, medicare=False) == payer.policy_id
            assert payer.policy_on(day, medicare=True) == (payer.medicare_policy_id or payer.policy_id)
