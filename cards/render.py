"""The decision card: what the payer will decide for one order, and why, criterion by criterion.

Written for a clinician with ten seconds: the summary states the result in under 140 characters;
the detail leads with what blocks coverage, then what is missing and how to document it, then
what is met, each line citing the policy section and the chart evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from service.engine.model import CriterionResult, Determination, Evidence, Outcome, Status
from service.orders import PumpOrder
from service.routing import Route

CARD_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/cdshooks-card-type"
SUMMARY_LIMIT = 139
_STATUS_MARK = {
    Status.MET: "✅ Met",
    Status.NOT_MET: "❌ Not met",
    Status.NOT_DOCUMENTED: "❔ Not documented",
}
_INDICATOR = {
    Outcome.MEETS: "info",
    Outcome.INSUFFICIENT: "info",
    Outcome.DOES_NOT_MEET: "warning",
    Outcome.NOT_APPLICABLE: "info",
}


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def summary(d: Determination) -> str:
    order = f"{d.billing_code}"
    counts = {s: sum(1 for c in d.criteria if c.status == s) for s in Status}
    if d.outcome == Outcome.MEETS:
        text = f"{d.payer}: {order} meets all {len(d.criteria)} coverage criteria"
    elif d.outcome == Outcome.DOES_NOT_MEET:
        text = f"{d.payer}: {order} does not meet coverage criteria ({counts[Status.NOT_MET]} not met)"
    elif d.outcome == Outcome.INSUFFICIENT:
        text = (
            f"{d.payer}: {order} needs documentation - {counts[Status.NOT_DOCUMENTED]} of "
            f"{len(d.criteria)} criteria not documented"
        )
    else:
        text = f"{d.payer}: no coverage criteria for this {order} request - manual review"
    return _short(text, SUMMARY_LIMIT)


def _evidence_line(e: Evidence) -> str:
    return f"{e.text} [{e.reference}]" if e.reference else e.text


def _criterion_lines(c: CriterionResult, depth: int = 0) -> list[str]:
    indent = "  " * depth
    lines = [f"{indent}- **{_STATUS_MARK[c.status]}: {c.label}** — {c.finding}"]
    if c.evidence and not c.children:
        lines += [f"{indent}  - {_evidence_line(e)}" for e in c.evidence]
    if c.status == Status.NOT_DOCUMENTED and c.how_to_document and not c.children and not c.unchecked_reason:
        lines.append(f"{indent}  - To document: {c.how_to_document}")
    if c.status != Status.MET and not c.children:
        lines.append(f'{indent}  - _Policy, {c.section}: "{c.text}"_')
    for child in c.children:
        lines += _criterion_lines(child, depth + 1)
    return lines


def detail(d: Determination) -> str:
    heading = {
        Outcome.MEETS: "Meets the payer's criteria.",
        Outcome.DOES_NOT_MEET: "Does not meet the payer's criteria.",
        Outcome.INSUFFICIENT: "Coverage cannot be confirmed until the missing items are documented.",
        Outcome.NOT_APPLICABLE: "The payer's policy does not address this request.",
    }[d.outcome]
    lines = [
        f"**{d.order_label}** ({d.order_reference}; {d.request_kind}, {d.indication})",
        "",
        f"{heading} {d.explanation}",
        "",
    ]
    for status in (Status.NOT_MET, Status.NOT_DOCUMENTED, Status.MET):
        for criterion in d.by_status(status):
            lines += _criterion_lines(criterion)
    lines += ["", f"Policy: {d.policy_title} — {d.payer}, {d.policy_version}."]
    return "\n".join(lines).strip()


def decision_card(d: Determination) -> dict[str, object]:
    """One CDS Hooks card for one Determination."""
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary(d),
        "detail": detail(d),
        "indicator": _INDICATOR[d.outcome],
        "source": {
            "label": d.payer,
            "topic": {"system": CARD_TYPE_SYSTEM, "code": "coverage-info", "display": "Coverage Information"},
        },
        "extension": {"davinci-crd.associated-resource": [{"reference": d.order_reference}]},
    }


def coverage_notice_card(route: Route | None, orders: Iterable[PumpOrder]) -> dict[str, object]:
    """An info card for a Coverage no policy here judges, or for a patient with no active Coverage."""
    order_list = list(orders)
    codes = ", ".join(o.code.code for o in order_list)
    if route is None:
        summary = f"No active coverage found: coverage rules for {codes} were not checked"
        detail = (
            "The EHR returned no active Coverage for this patient, so no payer's intrathecal pump policy "
            "could be applied. If the patient is insured, make sure the Coverage is active in the chart."
        )
        label = "idds-crd"
    else:
        summary = f"{route.payer_display}: no intrathecal pump coverage rules here for {codes}"
        detail = (
            f"This service holds no coverage policy for {route.payer_display} ({route.coverage}; "
            f"{route.matched_by}). Check the payer's own requirements for intrathecal drug delivery systems."
        )
        label = route.payer_display
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _short(summary, SUMMARY_LIMIT),
        "detail": detail,
        "indicator": "info",
        "source": {
            "label": label,
            "topic": {"system": CARD_TYPE_SYSTEM, "code": "coverage-info", "display": "Coverage Information"},
        },
        "extension": {"davinci-crd.associated-resource": [{"reference": o.reference} for o in order_list]},
    }


def external_reference_card(
    d: Determination, policy_url: str, payer_url: str | None = None
) -> dict[str, object]:
    """A card linking to the policy as this service checks it (and to the payer's page when known)."""
    links = [
        {"label": f"{d.payer} policy as checked: {d.policy_title}", "url": policy_url, "type": "absolute"}
    ]
    if payer_url:
        links.append({"label": f"{d.payer}'s published policy", "url": payer_url, "type": "absolute"})
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _short(f"{d.payer} policy: {d.policy_title}", SUMMARY_LIMIT),
        "detail": (
            f"The {d.payer} criteria for {d.request_kind.replace('-', ' ')} requests "
            f"({d.indication.replace('-', ' ')}), "
            f"with the policy's own words, the readings this service applies and the source text "
            f"({d.policy_version})."
        ),
        "indicator": "info",
        "source": {
            "label": d.payer,
            "topic": {"system": CARD_TYPE_SYSTEM, "code": "guideline", "display": "Guideline"},
        },
        "links": links,
    }


def documentation_steps(d: Determination) -> tuple[str, ...]:
    """What to document (or re-check) next for this order, not-met criteria first."""
    steps: list[str] = []
    for criterion in [*d.by_status(Status.NOT_MET), *d.by_status(Status.NOT_DOCUMENTED)]:
        for leaf in _leaves(criterion):
            if leaf.status == Status.MET:
                continue
            if leaf.unchecked_reason:
                step = f"{leaf.label}: {leaf.unchecked_reason}; re-run once the EHR returns the data."
            elif leaf.status == Status.NOT_DOCUMENTED and leaf.how_to_document:
                step = f"{leaf.label}: {leaf.how_to_document}"
            else:
                continue
            if step not in steps:
                steps.append(step)
    return tuple(steps)


def instructions_card(determinations: Sequence[Determination], steps: Sequence[str]) -> dict[str, object]:
    """A text-only card listing `steps`, shared by the orders (of one payer) that need the same ones."""
    first = determinations[0]
    codes = ", ".join(dict.fromkeys(d.billing_code for d in determinations))
    return {
        "uuid": str(uuid.uuid4()),
        "summary": _short(f"{first.payer}: {len(steps)} item(s) to document for {codes}", SUMMARY_LIMIT),
        "detail": "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)),
        "indicator": "info",
        "source": {
            "label": first.payer,
            "topic": {
                "system": CARD_TYPE_SYSTEM,
                "code": "clinical-reminder",
                "display": "Clinical Reminder",
            },
        },
        "extension": {
            "davinci-crd.associated-resource": [{"reference": d.order_reference} for d in determinations]
        },
    }


def _leaves(criterion: CriterionResult) -> list[CriterionResult]:
    if not criterion.children:
        return [criterion]
    return [leaf for child in criterion.children for leaf in _leaves(child)]
