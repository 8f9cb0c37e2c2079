"""Test types about the drug to be infused: which it is, and whether the patient is allergic to it.

They read the order's infusates (`EvaluationContext.infusates`), not the chart's medication history;
a drug order they would be read from but that was left out (service/infusates.py, `PUMP_DRUG`) leaves
what rests on no drug found unchecked, as a chart record left out does for what reads its kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.engine.checks.common import named_value_sets
from service.engine.checks.params import VALUE_SETS, Flag, optional
from service.engine.checks.testtype import test_type
from service.engine.context import EvaluationContext
from service.engine.model import Evidence, Status, TestOutcome
from service.infusates import PUMP_DRUG

# what a check says when the call orders no drug for the pump: a drug drafted for another route is
# not one (contract §2)
NO_PUMP_DRUG = "no drug for the pump is ordered (a drug order with the intrathecal or epidural route)"
# how a finding names the pump's drug when it is the chart's, the call ordering none (contract §2)
CHARTED = "the pump's drug in the chart"


@test_type("no-infusate-allergy", params={"valuesets": VALUE_SETS}, reads=("AllergyIntolerance", PUMP_DRUG))
def no_infusate_allergy(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """No allergy or hypersensitivity to the drug to be infused: a current allergy-list entry (contract
    §3). An AllergyIntolerance of type `intolerance` (a side effect, which is also how a failed drug
    trial is recorded) is not one."""
    value_set_ids = tuple(params["valuesets"])
    allergies = [a for a in ctx.record.allergies if a.current and a.kind != "intolerance"]
    same_drug = [
        (a, inf)
        for a in allergies
        for inf in ctx.infusates
        if any(c.system == d.system and c.code == d.code for c in a.codes for d in inf.codes)
    ]
    if same_drug:
        return TestOutcome(
            Status.NOT_MET,
            tuple(Evidence(f"{a.kind or 'allergy'}: {a.label}", a.source) for a, _ in same_drug[:3]),
            f"allergy to the pump drug ({same_drug[0][1].text or same_drug[0][1].reference}) documented",
        )
    ordered = ctx.infusate_ingredients()
    if ordered:
        hits = [(a, i) for a in allergies for _, i in ordered if i.names_substance(a.codes, a.text)]
        if hits:  # named by the ingredients the allergies hit, not every drug of the pump
            return TestOutcome(
                Status.NOT_MET,
                tuple(Evidence(f"{a.kind or 'allergy'}: {a.label}", a.source) for a, _ in hits[:3]),
                f"allergy to {', '.join(dict.fromkeys(i.name for _, i in hits))} documented",
            )
        names = ", ".join(i.name for _, i in ordered)
        return TestOutcome(Status.MET, finding=f"no allergy to {names} documented", by_absence=True)
    candidates = [i for vs in value_set_ids for i in ctx.terminology[vs].ingredients]
    hits = [(a, i) for a in allergies for i in candidates if i.names_substance(a.codes, a.text)]
    if hits:
        return TestOutcome(
            Status.NOT_DOCUMENTED,
            tuple(Evidence(f"allergy: {a.label}", a.source) for a, _ in hits[:3]),
            f"{NO_PUMP_DRUG}, and the patient has an allergy to an intrathecal agent",
        )
    return TestOutcome(Status.MET, finding="no allergy to any intrathecal agent documented", by_absence=True)


@test_type("infusate-not-in", params={"valuesets": VALUE_SETS}, reads=(PUMP_DRUG,))
def infusate_not_in(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The ordered infusate is none of the excluded drugs (absence rule when no drug is named)."""
    found = ctx.infusate_ingredients(tuple(params["valuesets"]))
    charted = bool(ctx.infusates) and all(inf.charted for inf in ctx.infusates)
    if found and charted:  # contract §2: the call orders none, so the chart's pump drug is the one
        names = ", ".join(dict.fromkeys(i.name for _, i in found))
        return TestOutcome(
            Status.NOT_MET,
            tuple(
                Evidence(f"{CHARTED}: {i.name} ({inf.text or inf.reference})", inf.reference)
                for inf, i in found
            ),
            f"{CHARTED} is excluded: {names} (its active intrathecal or epidural medication order; "
            "this call orders no drug)",
        )
    if found:
        return TestOutcome(
            Status.NOT_MET,
            tuple(
                Evidence(f"ordered infusate: {i.name} ({inf.text or inf.reference})", inf.reference)
                for inf, i in found
            ),
            "an excluded infusate is ordered",
        )
    named = ", ".join(inf.text for inf in ctx.infusates if inf.text) or "no infusate named"
    if charted:
        return TestOutcome(Status.MET, finding=f"not excluded: {CHARTED} is {named}", by_absence=True)
    return TestOutcome(Status.MET, finding=f"none ordered ({named})", by_absence=True)


@test_type(
    "infusate-in",
    params={"valuesets": VALUE_SETS, "single_ingredient": optional(Flag()), "includes": optional(Flag())},
    reads=(PUMP_DRUG,),
)
def infusate_in(params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
    """The ordered infusate is one of the value sets' drugs (e.g. an intrathecal opioid, or a drug
    FDA-approved for the route); with `includes`, one of its drugs is (an opioid mixed with
    bupivacaine is still an opioid infusion); `single_ingredient` refuses mixtures."""
    if not ctx.infusates:
        return TestOutcome(Status.NOT_DOCUMENTED, finding=NO_PUMP_DRUG)
    permitted = frozenset().union(*(vs.ingredient_names for vs in named_value_sets(ctx, params)))
    every = ctx.infusate_ingredients()
    evidence = tuple(
        Evidence(f"ordered: {i.name} ({inf.text or inf.reference})", inf.reference) for inf, i in every
    )
    charted = all(inf.charted for inf in ctx.infusates)  # the call orders none (contract §2)
    if params.get("single_ingredient") and len({i.name for _, i in every}) > 1:
        mixture = f"{CHARTED} is a mixture of drugs" if charted else "a mixture of drugs is ordered"
        return TestOutcome(Status.NOT_MET, evidence, mixture)
    allowed = [i.name for _, i in every if i.name in permitted]
    others = [i.name for _, i in every if i.name not in permitted]
    where = f"({CHARTED})" if charted else "ordered"
    if allowed and params.get("includes"):
        return TestOutcome(Status.MET, evidence, f"{', '.join(allowed)} {where}")
    if allowed and not others:
        return TestOutcome(Status.MET, evidence, f"{', '.join(allowed)} {where}")
    if others:
        return TestOutcome(Status.NOT_MET, evidence, f"{', '.join(others)} is not an allowed infusate")
    return TestOutcome(Status.NOT_DOCUMENTED, finding="the ordered drug could not be identified")
