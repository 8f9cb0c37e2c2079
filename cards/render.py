"""The decision card: what the payer will decide for one order, and why, criterion by criterion.

Written for a clinician with ten seconds: the summary states the result in under 140 characters;
the detail leads with what blocks coverage, then what is missing and how to document it, then
what is met, each line citing the policy section and the chart evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import date

from service.appointments import UnreadOrder
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


_TOPIC_DISPLAY = {
    "coverage-info": "Coverage Information",
    "guideline": "Guideline",
    "clinical-reminder": "Clinical Reminder",
}


def topic(code: str) -> dict[str, str]:
    """A `source.topic` Coding from the CDS Hooks card-type code system."""
    return {"system": CARD_TYPE_SYSTEM, "code": code, "display": _TOPIC_DISPLAY[code]}


def card(
    summary: str,
    detail: str,
    label: str,
    topic_code: str,
    orders: Iterable[str] = (),
    indicator: str = "info",
    **fields: object,
) -> dict[str, object]:
    """The fields every card has (summary cut to the limit), the orders it is about, and `fields`."""
    built: dict[str, object] = {
        "uuid": str(uuid.uuid4()),
        "summary": shorten(summary, SUMMARY_LIMIT),
        "detail": detail,
        "indicator": indicator,
        "source": {"label": label, "topic": topic(topic_code)},
        **fields,
    }
    references = [{"reference": reference} for reference in dict.fromkeys(orders)]
    if references:
        built["extension"] = {"davinci-crd.associated-resource": references}
    return built


def shorten(text: str, limit: int) -> str:
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
    return shorten(text, SUMMARY_LIMIT)


def _evidence_line(e: Evidence) -> str:
    return f"{e.text} [{e.reference}]" if e.reference else e.text


def _dated(e: Evidence) -> str:
    when = e.date.date().isoformat() if e.date else "undated"
    return f"{e.text} ({when}{', ' + e.reference if e.reference else ''})"


def _fact_line(c: CriterionResult) -> str:
    """A fact documented in several forms is one line: the deciding evidence, then the older forms
    of the same fact that it overrules."""
    deciding = "; ".join(_dated(e) for e in c.evidence)
    return f"{c.finding}: {deciding}; overrules {'; '.join(_dated(e) for e in c.overruled)}"


def _criterion_lines(c: CriterionResult, depth: int = 0) -> list[str]:
    indent = "  " * depth
    finding = _fact_line(c) if c.overruled else c.finding
    lines = [f"{indent}- **{_STATUS_MARK[c.status]}: {c.label}** — {finding}"]
    if c.evidence and not c.children and not c.overruled:
        lines += [f"{indent}  - {_evidence_line(e)}" for e in c.evidence]
    if c.status == Status.NOT_DOCUMENTED and c.how_to_document and not c.children and not c.unchecked_reason:
        lines.append(f"{indent}  - To document: {c.how_to_document}")
    if c.status != Status.MET and not c.children:
        lines.append(f'{indent}  - _Policy, {c.section}: "{c.text}"_')
    for child in c.children:
        lines += _criterion_lines(child, depth + 1)
    return lines


DOCUMENT_INDICATION = (
    "Document the indication: record the diagnosis the pump treats (the pain or the spasticity) as the "
    "order's reasonCode, or order the pump drug as a MedicationRequest with the intrathecal or epidural "
    "route."
)


def _indication_unknown(d: Determination) -> list[str]:
    """The lines that open the detail when nothing told the indication, so the criteria that follow are read
    as what they are: every branch of the policy, judged for an assumed indication."""
    if d.indication_evident:
        return []
    assumed = d.indication.replace("-", " ")
    return [
        f"**The indication could not be told**: neither the order's reason, its pump drug nor the problem "
        f"list says what the pump is for. The criteria below assume {assumed} and keep every branch of "
        f"{d.payer}'s either/or criteria. {DOCUMENT_INDICATION}",
        "",
    ]


def detail(d: Determination) -> str:
    heading = {
        Outcome.MEETS: "Meets the payer's criteria.",
        Outcome.DOES_NOT_MEET: "Does not meet the payer's criteria.",
        Outcome.INSUFFICIENT: "Coverage cannot be confirmed until the missing items are documented.",
        Outcome.NOT_APPLICABLE: "The payer's policy does not address this request.",
    }[d.outcome]
    lines = [
        *_indication_unknown(d),
        f"**{d.order_label}** ({d.order_reference}; {d.request_kind}, {d.indication})",
        "",
        f"{heading} {d.explanation}",
        "",
    ]
    for status in (Status.NOT_MET, Status.NOT_DOCUMENTED, Status.MET):
        for criterion in d.by_status(status):
            lines += _criterion_lines(criterion)
    lines += ["", f"Policy: {d.policy_title} — {d.payer}, {d.policy_version}."]
    if d.review_overdue_since is not None:
        lines.append(review_overdue_line(d.payer, d.review_overdue_since))
    return "\n".join(lines).strip()


def review_overdue_line(payer: str, due: date) -> str:
    """One line saying a policy is past the next-review date its publisher stated."""
    when = f"{due:%B %Y}" if due.day == 1 else f"{due.day} {due:%B %Y}"
    return (
        f"⚠ Past its review date: {payer} said it would review this policy by {when}; "
        f"check {payer} for a newer version."
    )


OVERRIDE_REASON_SYSTEM = "http://idds-crd.org/fhir/CodeSystem/idds-override-reason"
_OVERRIDE_REASONS = {
    "documented-elsewhere": "Documentation exists outside this EHR",
    "will-document": "Will document before the request is submitted",
    "clinical-judgement": "Clinically necessary: will request payer review",
    "patient-informed": "Patient informed the payer may not cover this",
}


def decision_card(d: Determination) -> dict[str, object]:
    """One CDS Hooks card for one Determination; when the order does not clearly meet the criteria,
    the reasons a clinician may give for going ahead anyway."""
    decision = card(
        summary(d), detail(d), d.payer, "coverage-info", [d.order_reference], _INDICATOR[d.outcome]
    )
    if d.outcome != Outcome.MEETS:
        decision["overrideReasons"] = [
            {"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
            for code, display in _OVERRIDE_REASONS.items()
        ]
    return decision


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
    return card(summary, detail, label, "coverage-info", [o.reference for o in order_list])


def unread_order_card(unread: UnreadOrder, label: str) -> dict[str, object]:
    """An honest "could not check" card for a booked appointment whose order could not be read;
    `label` names the patient's insurer(s) when known."""
    return card(
        f"Coverage not checked for {unread.appointment}: its order could not be read",
        f"{unread.appointment} is based on {unread.order}, but {unread.reason}, so this service could "
        "not tell whether it is an intrathecal pump order or check the payer's coverage criteria for it. "
        "Book again once the order is available, or check the payer's requirements directly.",
        label,
        "coverage-info",
        [unread.appointment],
    )


def external_reference_card(
    d: Determination, policy_url: str, payer_url: str | None = None
) -> dict[str, object]:
    """A card linking to the policy as this service checks it (and to the payer's page when known)."""
    links = [
        {"label": f"{d.payer} policy as checked: {d.policy_title}", "url": policy_url, "type": "absolute"}
    ]
    if payer_url:
        links.append({"label": f"{d.payer}'s published policy", "url": payer_url, "type": "absolute"})
    detail = (
        f"The {d.payer} criteria for {d.request_kind.replace('-', ' ')} requests "
        f"({d.indication.replace('-', ' ')}), with the policy's own words, the readings this service "
        f"applies and the source text ({d.policy_version})."
    )
    return card(f"{d.payer} policy: {d.policy_title}", detail, d.payer, "guideline", links=links)


def _open_leaves(c: CriterionResult) -> list[CriterionResult]:
    """The undocumented leaves that documenting can still decide, reached through undocumented parts
    only: a part already met, or already not met (a ruled-out branch of an either/or, such as the
    other indication's block once the drug is known), is settled, and nothing is asked of it."""
    if c.status != Status.NOT_DOCUMENTED:
        return []
    if not c.children:
        return [c]
    return [leaf for child in c.children for leaf in _open_leaves(child)]


def documentation_steps(d: Determination) -> tuple[str, ...]:
    """What to document (or re-check) next for this order: the open leaves of its undocumented
    criteria. A criterion already not met is named by the card's review step, not documented."""
    steps: list[str] = []
    for criterion in d.by_status(Status.NOT_DOCUMENTED):
        for leaf in _open_leaves(criterion):
            if leaf.unchecked_reason:
                step = f"{leaf.label}: {leaf.unchecked_reason}; re-run once the EHR returns the data."
            elif leaf.how_to_document:
                step = f"{leaf.label}: {leaf.how_to_document}"
            else:
                step = f'{leaf.label}: document what shows "{leaf.text}" ({leaf.section}).'
            if step not in steps:
                steps.append(step)
    return tuple(steps)


def next_steps(d: Determination, auto_approved: bool = False) -> tuple[str, tuple[str, ...]]:
    """(headline, steps) of the Instructions card: what to document, else what to do next. While nothing
    tells the indication, documenting it is the one step: every other step depends on it."""
    if not d.indication_evident and d.outcome != Outcome.NOT_APPLICABLE:
        return "document the indication", (DOCUMENT_INDICATION,)
    documentation = documentation_steps(d)
    if d.outcome == Outcome.DOES_NOT_MEET:
        failed = "; ".join(c.label for c in d.by_status(Status.NOT_MET))
        return "not covered as ordered", (
            f"Review what {d.payer} does not accept before submitting: {failed}.",
            *documentation,
            "If the order goes ahead, give the reason when you override the decision card.",
        )
    if d.outcome == Outcome.INSUFFICIENT or documentation:
        return f"{len(documentation)} item(s) to document", documentation
    if d.outcome == Outcome.MEETS and auto_approved:
        return "approved, no prior authorization request needed", (
            f"{d.payer} approves orders that meet {d.policy_title}: no prior authorization request is "
            "needed; the approval number is in the order's coverage information.",
        )
    if d.outcome == Outcome.MEETS:
        return "request prior authorization", (
            f"Request prior authorization from {d.payer}: every criterion of {d.policy_title} is documented.",
            "Send the evidence the decision card cites with the request.",
        )
    return "ask for a manual review", (
        f"{d.payer}'s {d.policy_title} has no criteria for this {d.request_kind.replace('-', ' ')} request "
        f"({d.indication.replace('-', ' ')}): ask {d.payer} for a manual review.",
    )


def instructions_card(
    determinations: Sequence[Determination], headline: str, steps: Sequence[str]
) -> dict[str, object]:
    """A text-only card listing `steps`, shared by the orders (of one payer) that need the same ones."""
    first = determinations[0]
    codes = ", ".join(dict.fromkeys(d.billing_code for d in determinations))
    return card(
        f"{first.payer}: {headline} for {codes}",
        "\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)),
        first.payer,
        "clinical-reminder",
        [d.order_reference for d in determinations],
    )
