"""The respond stage: which cards, in what order, under which options, and the coverage information.

Takes the call's `Decisions` and the call's configuration options and returns the CDS Hooks
response. Everything a service does differently comes from its behaviour in the registry (may it
approve, may it ask for documentation, does its user place the order, does every order or each
booked Appointment get coverage information). Pure but for one thing: values in, a dict out, each
card and suggestion with a fresh uuid (CDS Hooks feedback names a card by it, so a retried call must
not reuse one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import takewhile
from typing import Any

from cards.coverage_information import (
    AssertionRules,
    CoverageJudgement,
    CoverageTarget,
    HeldApproval,
    HookCall,
    approval_held,
    coverage_actions,
)
from cards.form_completion import FormRequest, form_completion_card
from cards.items import (
    TRIAL_NOT_DONE,
    Episode,
    JoinedOrder,
    payer_with_plan,
    trial_awaited,
    trial_to_order,
    trial_under_way,
)
from cards.render import (
    SERVICE_LABEL,
    LineApproval,
    coverage_notice_card,
    decision_card,
    external_reference_card,
    in_crd_version,
    inactive_coverage_card,
    instructions_card,
    next_steps,
    says_every_step,
    unread_order_card,
)
from cards.suggestions import trial_first_card
from service.appointments import UnreadOrder, based_on
from service.call import Decisions
from service.catalog import Catalog
from service.codes import Code, codings, concept_text, first_display
from service.engine.model import Determination, Outcome
from service.hooks.contexts import CLINICIANS
from service.modifiers import not_understood
from service.next_steps import trial_shows, trials_accepted
from service.orders import DraftOrders
from service.questionnaires import canonical_of
from service.registry import CallOptions
from service.routing import Route
from service.shapes import dicts, medication_concept, reference_of
from service.wording import listing

CODE_ELEMENTS = ("code", "codeCodeableConcept", "medicationCodeableConcept", "serviceType", "appointmentType")


def _payer_label(routes: tuple[Route, ...]) -> str:
    """The insurer name(s) a card not about one payer's decision is labelled with."""
    return ", ".join(dict.fromkeys(r.payer_display for r in routes)) or SERVICE_LABEL


def _auto_approves(route: Route, decisions: Decisions) -> bool:
    """The route's payer approves what meets its policy, and this call allows it."""
    return decisions.approvals and route.payer is not None and route.payer.auto_approval


def _without_dtr(route: Route) -> bool:
    return route.payer is not None and not route.payer.uses_dtr


# The service's public URL, or what gives it when asked: a call's own URL root is worked out only if its
# answer links a policy page (werkzeug's `url_root`, 0.09 M instructions, was every call's: perf31)
BaseUrl = str | Callable[[], str]


def policy_page(base_url: BaseUrl, policy_id: str) -> str:
    """This service's page of a policy as it checks it (`GET /policies/<policy_id>`), linked from the
    policy-link card and from a CRD 2.2 assertion's `policy-link` detail."""
    return f"{base_url() if callable(base_url) else base_url}/policies/{policy_id}"


def respond(
    decisions: Decisions,
    options: CallOptions,
    base_url: BaseUrl,
    catalog: Catalog,
    issuer: HookCall | None = None,
) -> dict[str, Any]:
    """The CDS Hooks response of one call: cards (at most `max-cards`, kept by importance: `_within`)
    and system actions; with `coverage-info: false`, neither coverage information nor the cards of
    that type (§dev-5: the option switches off its card type), the other types as their own options
    say. `issuer`: the call issuing its assertions (None: the request's hook and hookInstance), which
    keeps each one it builds, what the audit record reads as issued (`HookCall.issued`)."""
    request = decisions.request
    rules = AssertionRules(
        decisions.call.behaviour.asks_documentation,
        request.crd_version,
        may_approve=decisions.approvals,
        fhir_server=request.fhir.server,
    )
    if issuer is None:
        issuer = HookCall(request.hook, request.hook_instance)
    actions = (
        coverage_actions(_targets(decisions, base_url), rules, issuer, decisions.today)
        if options.coverage_info
        else []
    )
    held = _approvals_held(decisions, actions, rules, issuer)
    slots = _decision_cards(decisions, options, base_url, catalog, held)
    if options.coverage_info:
        slots += [_Slot(notice, _NOTICE) for notice in _notices(decisions)]
    kept = _within(slots, options.max_cards)
    response: dict[str, Any] = {"cards": in_crd_version(kept, request.crd_version)}
    if actions:
        response["systemActions"] = actions
    return response


# how much a card matters when `max-cards` leaves out some (lower first)
_NOT_COVERED, _NOTICE, _DECISION, _OTHER = range(4)


@dataclass(frozen=True)
class _Slot:
    """A card of the answer before `max-cards` is applied: how much it matters (`rank`), and for a
    decision card that points to its Instructions card, and for that Instructions card, the episode
    they share (`episode`, with `listing`: this is the Instructions card), and the decision card's lines
    holding an approval (`approved`: it says so once its Instructions card is left out)."""

    card: dict[str, Any]
    rank: int
    episode: Episode | None = None
    listing: bool = False
    approved: tuple[LineApproval, ...] = ()  # a decision card's: its lines holding an approval


def _within(slots: Sequence[_Slot], limit: int) -> list[dict[str, Any]]:
    """At most `limit` cards, in the answer's order, kept by importance: first the decision cards
    saying an order is not covered (indicator warning: session review s17 review2 N-6), then the
    notices of what was not checked (an info card saying an order meets must not hide that another
    was not checked: review s17 F-10), then the other decision cards, then the rest in the answer's
    order. A decision card whose Instructions card is left out names the items its detail could not
    hold itself, instead of pointing to a card the answer does not show (review2 N-7)."""
    by_importance = sorted(range(len(slots)), key=lambda i: (slots[i].rank, i))
    kept = [slots[i] for i in sorted(by_importance[: max(limit, 0)])]
    listed = [s.episode for s in kept if s.listing]
    return [
        decision_card(s.episode, instructions=False, approved=s.approved)
        if s.episode is not None and not s.listing and not any(e is s.episode for e in listed)
        else s.card
        for s in kept
    ]


def _approvals_held(
    decisions: Decisions, actions: list[dict[str, Any]], rules: AssertionRules, issuer: HookCall
) -> dict[tuple[str, str], HeldApproval]:
    """(pump order, Coverage) → the approval the order holds once this answer is applied: the one
    its coverage information issues, or the one it came carrying and keeps (a call that may not
    approve, or sends no coverage information, leaves it as it was)."""
    updated = {reference_of(a["resource"]): a["resource"] for a in actions}
    held = {}
    for order in decisions.call.pump_orders:
        resource = updated.get(order.reference, order.resource)
        for route in decisions.routes:
            if (
                approval := approval_held(resource, order.reference, route.coverage, rules, issuer)
            ) is not None:
                held[(order.reference, route.coverage)] = approval
    return held


def _notices(decisions: Decisions) -> list[dict[str, Any]]:
    """Cards that say what was not checked: unreadable orders, Coverages without rules here, or the
    one Coverage, not active, that every order is answered not covered for. Each only for a call
    about a pump order (one judged, or one not checked): this service's cards are about the pump; a
    call about nothing else (an office visit) gets its coverage information alone, whether its
    Coverage has rules here or is not active (session review s18 R-7)."""
    call = decisions.call
    label = _payer_label(decisions.routes)
    reported = [u for u in call.unread if u.reported]  # an order at hand only when one with rules here
    notices = [unread_order_card(u, label, orders) for u, orders in _one_per_booking(reported)]
    inactive = next((r for r in decisions.routes if r.inactive), None)
    answered = [reference_of(r) for r in (*call.in_scope, *call.appointments)]
    if inactive is not None:
        about_a_pump = bool(call.pump_orders or reported)
        notices += [inactive_coverage_card(inactive, answered)] if answered and about_a_pump else []
    elif call.pump_orders:
        unjudged = [r for r in decisions.routes if r.policy_id is None]
        notices += [coverage_notice_card(r, call.pump_orders) for r in unjudged]
        if not decisions.routes:
            notices.append(coverage_notice_card(None, call.pump_orders))
    return notices


def _one_per_booking(unread: Iterable[UnreadOrder]) -> list[tuple[UnreadOrder, list[str]]]:
    """Each order not checked, with the orders its card names: an Appointment carrying a modifier
    extension holds back every pump order it books (gather's `_modified_unread`, one each for their
    coverage information), and gets one card naming them all (review2 F-7), not one per order."""
    cards: list[tuple[UnreadOrder, list[str]]] = []
    by_booking: dict[str, list[str]] = {}
    for u in unread:
        if not (u.modifiers and u.booked):
            cards.append((u, [u.order]))
        elif u.appointment in by_booking:
            by_booking[u.appointment].append(u.order)
        else:
            cards.append((u, by_booking.setdefault(u.appointment, [u.order])))
    return cards


def _decision_cards(
    decisions: Decisions,
    options: CallOptions,
    base_url: BaseUrl,
    catalog: Catalog,
    held: Mapping[tuple[str, str], HeldApproval],
) -> list[_Slot]:
    """Decision cards first, then orders to add and what to document or do next, then the policy links.
    Orders to add and the Instructions card only where the hook's user places the order (the
    behaviour's `places_order`): elsewhere the order was placed before. No order or form to add for a
    patient the chart records as deceased (the Instructions card says why: `render.deceased_step`).
    The Instructions card says approved when every line of the episode holds an approval for each of
    its Coverages (`held`); there is none beside a decision card in the answer that says each of its
    steps already (`says_every_step`: cards23 LOW, the same items twice in the same words)."""
    behaviour = decisions.call.behaviour
    determinations = decisions.determinations
    proposals = (
        _trial_first_cards(decisions, catalog) if options.clinical_reminder and behaviour.places_order else []
    )
    episodes = [
        Episode.of(
            group,
            catalog.vocabulary.rank,
            _awaiting(decisions, group, catalog if proposals else None),
            decisions.billed_lines,
            _joined(decisions, group),
            _before_trial(decisions, group, catalog),
        )
        for group in _episodes(determinations)
    ]
    episodes = _plans_told_apart(episodes, decisions.routes)
    instructions = options.clinical_reminder and behaviour.places_order
    # the episodes that get an Instructions card: not one whose decision card, in the answer, says it all
    listed = (
        [e for e in episodes if _has_steps(e) and not (options.coverage_info and says_every_step(e))]
        if instructions
        else []
    )
    slots = (
        [
            _decision_slot(episode, any(e is episode for e in listed), _approved(decisions, episode, held))
            for episode in episodes
        ]
        if options.coverage_info
        else []
    )
    if options.clinical_reminder:
        slots += [_Slot(c, _OTHER) for c in proposals]
        if behaviour.asks_documentation and not any(d.deceased for d in determinations):
            slots += [_Slot(c, _OTHER) for c in _form_completion_cards(decisions)]
    for episode in listed:
        lines = _approved(decisions, episode, held)
        approved = len(lines) == len(episode.lines)
        # named as the orders' own only when no line's approval is this call's (review s17 F-6)
        carried = approved and not any(a.issued for a in lines)
        kept = tuple(n for a in lines for n in a.numbers) if carried else ()
        partly = () if approved else lines  # some lines hold one, the others do not (fix-e, s17)
        headline, steps = next_steps(episode, approved, kept, partly)
        listing = instructions_card(episode, headline, steps, partly)
        slots.append(_Slot(listing, _OTHER, episode, listing=True))
    if options.guideline:
        slots += [_Slot(c, _OTHER) for c in _policy_links(episodes, base_url, catalog)]
    return slots


def _policy_links(episodes: Sequence[Episode], base_url: BaseUrl, catalog: Catalog) -> list[dict[str, Any]]:
    """One card per policy linking to it, about the orders it judged, naming every payer whose decision
    it is: a deployment's payers.yaml may route two payers to one policy (both send their Medicare
    members to the NCD), whose decision cards are each their own, but whose policy and page are one;
    two links alike but for the payer's name would be the same card twice."""
    judged: dict[str, tuple[list[str], list[str]]] = {}  # per policy, its payers and the orders it judged
    for episode in episodes:
        payers, orders = judged.setdefault(episode.lead.policy_id, ([], []))
        payers.append(episode.lead.payer)
        orders.extend(x.order_reference for x in episode.lines)
    links = []
    for d in (episode.lead for episode in episodes):
        if d.policy_id in judged:
            payers, orders = judged.pop(d.policy_id)
            named = replace(d, payer=listing(list(dict.fromkeys(payers))))
            url = policy_page(base_url, d.policy_id)
            policy = catalog.policies[d.policy_id]
            links.append(external_reference_card(named, url, policy.url, orders, policy.payer))
    return links


def _approved(
    decisions: Decisions, episode: Episode, held: Mapping[tuple[str, str], HeldApproval]
) -> tuple[LineApproval, ...]:
    """The episode's lines that hold an approval for each of its Coverages once the answer is applied,
    in the episode's order; none when it has no Coverage."""
    routes = [r for r in decisions.routes if r.coverage in episode.lead.coverages]
    lines = []
    for x in episode.lines:
        approvals = [held.get((x.order_reference, r.coverage)) for r in routes]
        found = [a for a in approvals if a is not None]
        if found and len(found) == len(approvals):
            lines.append(
                LineApproval(x.order_reference, tuple(a.number for a in found), any(a.issued for a in found))
            )
    return tuple(lines)


def _has_steps(episode: Episode) -> bool:
    """Whether an episode gets an Instructions card: not one its payer's policy has no criteria for,
    whose one step (ask the payer for a manual review) its decision card says, title and detail, so a
    second card said it again (ehr20 C3, cardfix20 F4g); unless the chart records the patient as
    deceased, which that card's first step is about."""
    return episode.lead.outcome != Outcome.NOT_APPLICABLE or bool(episode.lead.deceased)


def _decision_slot(episode: Episode, instructions: bool, approved: tuple[LineApproval, ...]) -> _Slot:
    """A decision card (pointing to its Instructions card when the answer carries one: `instructions`,
    else saying where an order that meets stands on prior authorization: `approved`), ranked by
    whether it says the order is not covered."""
    decision = decision_card(episode, instructions, approved)
    rank = _NOT_COVERED if decision["indicator"] in ("warning", "critical") else _DECISION
    return _Slot(decision, rank, episode if instructions else None, approved=approved)


def _awaiting(
    decisions: Decisions, group: Sequence[Determination], proposing: Catalog | None = None
) -> dict[str, str]:
    """Criterion id → what its item says first of the trial that is to document it, for the lines of
    one episode: the trials under way on the chart (`Decisions.trials_under_way`, said before an order
    the Procedure may carry out) or ordered in the EHR and not yet done (`Decisions.awaiting_trial`), or, when
    the answer proposes the trial (`proposing`: the catalog whose trials it proposes), that it is to be
    ordered first: the trial criteria of `Decisions.trial_missing` and every other result the trial is
    to show (`trial_shows`: its side effects, the patient's acceptance); else, that no trial has been
    done (`Decisions.trial_not_done`: a trial not proposed, as none could make the order covered, or
    proposed on another card than this hook's)."""
    if decisions.trials_under_way or decisions.trials_ordered:
        under_way = decisions.trials_under_way
        words = trial_under_way(under_way) if under_way else trial_awaited(decisions.trials_ordered)
        return {
            criterion: words
            for d in group
            for criterion in decisions.awaiting_trial.get((d.order_reference, d.policy_id), ())
        }
    not_done = {
        criterion: TRIAL_NOT_DONE
        for d in group
        for criterion in decisions.trial_not_done.get((d.order_reference, d.policy_id), ())
    }
    if proposing is None:
        return not_done
    first = trial_to_order(_trials(decisions, proposing))
    return not_done | {
        criterion: first
        for d, criteria in decisions.trial_missing
        if d in group
        for criterion in (
            *(r.id for c in criteria for r in c.walk()),
            *trial_shows(d, proposing.policies[d.policy_id]),
        )
    }


def _before_trial(decisions: Decisions, group: Sequence[Determination], catalog: Catalog) -> frozenset[str]:
    """The criteria of one episode's lines whose policy asks them before the trial (`Policy.before_trial`:
    KPWA 3.c's and CMM-210's opioid reduction agreement, "prior to undergoing an intrathecal opiate
    trial"), while the patient has not begun one: no trial completed on the chart, whether the answer
    proposes one, none (`Decisions.trial_not_done`: CMM-210's own pre-trial conditions unmet, review22b
    L4), or one is ordered in the EHR or in preparation and not begun (`Decisions.awaiting_trial`): the
    Instructions card says them before the trial's step. Not once a trial is in progress or on hold:
    then it is under way, and nothing can come before it."""
    begun = any(p.status != "preparation" for p in decisions.trials_under_way)
    pending = {**decisions.trial_not_done, **({} if begun else decisions.awaiting_trial)}
    return frozenset(
        criterion
        for d in group
        if (d.order_reference, d.policy_id) in pending
        for criterion in catalog.policies[d.policy_id].before_trial
    )


def _joined(decisions: Decisions, group: Sequence[Determination]) -> tuple[JoinedOrder, ...]:
    """The call's orders judged as the pump orders of `group` and not billed with them (the pump's
    drug, `Decisions.episode_orders`), in the call's scope (selected, at order-select): the decision
    card names them among the resources it is about, as the coverage information written on them is
    its judgement (audit20 M5); `alone` when the selection holds none of the group's orders."""
    selected = {reference_of(r) for r in decisions.call.in_scope}
    lines = {d.order_reference for d in group}
    billed = {b.reference for b in decisions.billed_lines}
    alone = selected.isdisjoint(lines)
    return tuple(
        JoinedOrder(reference, _drug_name(decisions.call.drafts, reference), pump, alone)
        for reference, pump in decisions.episode_orders.items()
        if pump in lines and reference in selected and reference not in billed
    )


def _drug_name(drafts: DraftOrders, reference: str) -> str:
    """How a card names a drug order: its drug's words before the first strength or form number
    ("morphine sulfate 25 MG/ML Injectable Solution" → "morphine sulfate")."""
    order = drafts.get(reference)
    words = first_display(medication_concept(order, drafts.get) if order else None).split()
    named = list(takewhile(lambda w: not w[:1].isdigit(), words))
    return " ".join(named or words) or "drug"


def _episodes(determinations: tuple[Determination, ...]) -> list[list[Determination]]:
    """The call's determinations per payer decision: one group per policy and payer's Coverages (two
    payers a deployment routes to one policy each have their own determinations), holding every
    order line of the episode (pump, catheter, hardware) that the payer judges, and apart from them
    the lines its policy has no criteria for (a refill beside the implant: left to a manual review,
    which no card speaking for the judged lines can say; sandbox review s17, S-4)."""
    groups: dict[tuple[str, tuple[str, ...], bool], list[Determination]] = {}
    for d in determinations:
        groups.setdefault((d.policy_id, d.coverages, d.outcome == Outcome.NOT_APPLICABLE), []).append(d)
    return list(groups.values())


MEDICARE_PLAN, NOT_CODED_MEDICARE = "Medicare plan", "plan not coded as Medicare"  # `_plans_told_apart`


def _plans_told_apart(episodes: Sequence[Episode], routes: Sequence[Route]) -> list[Episode]:
    """The episodes, each naming the payer's plan it judged (`Episode.plan`) where the answer judges
    Coverages of one payer under two policies, as routing told them apart: Medicare or not (Kaiser's
    Medicare Coverage under the NCD, its other one under Kaiser's criteria). Two cards "Kaiser
    Permanente Washington: 1 item to document" and "…: 3 items to document" said which plan each was
    only in their last line, the policy's title. No member id: the EHR knows its Coverages by their
    records, and a card says no more of the patient than the clinician needs. The plan that is not
    Medicare by routing is said to be "not coded as Medicare", what decided it (contract §6: a coded
    type decides, whatever the names say), not "non-Medicare plan": a plan named "… Medicare
    Advantage" whose type is coded otherwise was called non-Medicare against its own name (review25b L3)."""
    plans = _plans([episode.lead for episode in episodes], routes)
    return [
        replace(episode, plan=plans[_judged(episode.lead)]) if _judged(episode.lead) in plans else episode
        for episode in episodes
    ]


def _judged(d: Determination) -> tuple[str, tuple[str, ...]]:
    """Who judged a determination: its payer and the Coverages it judged."""
    return d.payer, d.coverages


def _plans(
    judged: Sequence[Determination], routes: Sequence[Route]
) -> dict[tuple[str, tuple[str, ...]], str]:
    """The plan each payer's judgement is of (`_judged`), where the answer judges Coverages of one payer
    under two policies (`_plans_told_apart`); the trial-first card names them so too."""
    medicare = {r.coverage: r.medicare for r in routes}
    kinds: dict[str, set[bool | None]] = {}  # per payer, Medicare or not, of each Coverage it judged
    for d in judged:
        kinds.setdefault(d.payer, set()).update(medicare.get(c) for c in d.coverages)
    plans = {}
    for payer, coverages in dict.fromkeys(_judged(d) for d in judged):
        mine = {medicare.get(c) for c in coverages}
        if len(kinds[payer]) > 1 and len(mine) == 1:
            plans[payer, coverages] = MEDICARE_PLAN if mine == {True} else NOT_CODED_MEDICARE
    return plans


def _trial_first_cards(decisions: Decisions, catalog: Catalog) -> list[dict[str, Any]]:
    """One card for the implant orders (pump, hardware) of a call when a payer wants a trial that
    never happened: the trial comes once before the whole implant, however many lines it has; none
    for a patient the chart records as deceased (`render.deceased_step` says why). The
    proposed order's requester is the hook's user when a practitioner (the one placing the order),
    else none: never a patient or another party."""
    if not decisions.trial_missing or any(d.deceased for d, _ in decisions.trial_missing):
        return []  # no order for a patient recorded as deceased: the Instructions card says why
    trials = _trials(decisions, catalog)
    if not trials:
        return []  # none of the trials proposed would do for every payer's criteria
    context = decisions.request.context
    user = context.user_id or ""
    requester = user if user.split("/", 1)[0] in CLINICIANS else None
    plans = _plans(decisions.determinations, decisions.routes)
    return [
        trial_first_card(
            [
                (payer_with_plan(d.payer, plans.get(_judged(d), "")), d, criteria)
                for d, criteria in decisions.trial_missing
            ],
            trials,
            context.patient_id,
            decisions.today,
            requester,
            context.encounter_id,
        )
    ]


def _trials(decisions: Decisions, catalog: Catalog) -> tuple[Code, ...]:
    """The trials to propose: those of the order-code table every payer's trial criteria accept."""
    return trials_accepted(
        decisions.trial_missing, catalog.policies, catalog.terminology, catalog.order_codes.trial_first
    )


def _form_completion_cards(decisions: Decisions) -> list[dict[str, Any]]:
    """For payers without DTR, one form-completion card per form an order needs and payer asking for it
    (CRD §resp-59): two payers routed to one policy each ask for it, each its Task's requester."""
    by_form: dict[tuple[str, str], tuple[dict[str, Any], dict[str, Any], list[Determination]]] = {}
    for d in decisions.determinations:
        route = next((r for r in decisions.routes if r.coverage in d.coverages and _without_dtr(r)), None)
        form = decisions.forms.get((d.order_reference, d.policy_id)) if route is not None else None
        if route is None or form is None:
            continue
        requester = route.payer_reference or {"type": "Organization", "display": route.payer_display}
        # per payer: each asks for its own answers, the Task naming it as the requester
        by_form.setdefault((form["id"], route.payer_display), (form, requester, []))[2].append(d)
    context = decisions.request.context
    return [
        form_completion_card(
            FormRequest(form, group, requester, context.patient_id, context.encounter_id, decisions.today)
        )
        for form, requester, group in by_form.values()
    ]


def _judgements(decisions: Decisions, base_url: BaseUrl) -> dict[str, tuple[CoverageJudgement, ...]]:
    """Per pump order, what each active Coverage's payer says (no determination: no rules here), with
    this service's page of the policy that judged it."""
    by_key = {(d.order_reference, cov): d for d in decisions.determinations for cov in d.coverages}
    judgements: dict[str, tuple[CoverageJudgement, ...]] = {}
    for order in decisions.call.pump_orders:
        per_route = []
        for route in decisions.routes:
            d = by_key.get((order.reference, route.coverage))
            form = decisions.forms.get((d.order_reference, d.policy_id)) if d else None
            judgement = CoverageJudgement(
                route.coverage,
                route.payer_display,
                d,
                canonical_of(form) if form else None,
                _auto_approves(route, decisions),
                dtr=not _without_dtr(route),
                policy_page=policy_page(base_url, d.policy_id) if d else None,
                inactive=route.inactive,
            )
            if route.elsewhere is not None:
                judgement = replace(judgement, undecided=route.elsewhere)
            per_route.append(judgement)
        judgements[order.reference] = tuple(per_route)
    return judgements


def _undecided(decisions: Decisions, text: str, technical: bool = False) -> tuple[CoverageJudgement, ...]:
    """Every Coverage's honest answer for a resource this service did not judge, and why (`technical`:
    because the EHR's FHIR server failed)."""
    return tuple(
        CoverageJudgement(
            r.coverage, r.payer_display, undecided=text, technical=technical, inactive=r.inactive
        )
        for r in decisions.routes
    )


def _modified(decisions: Decisions, reference: str) -> tuple[CoverageJudgement, ...]:
    """Every Coverage's "not checked" for a resource carrying a modifier extension (service/modifiers.py):
    a pump order, its drug or a booked Appointment alike, or a pump order an Appointment carrying one
    books (gather's `_modified_unread`: what is booked may not be the plain order); none otherwise."""
    if urls := decisions.call.modifiers.get(reference):
        return _undecided(decisions, f"{not_understood(urls)}, so it was not checked")
    booking = next(
        (u for u in decisions.call.unread if u.modifiers and u.booked and u.order == reference), None
    )
    if booking is None:
        return ()
    holder = f"the appointment booking it ({booking.appointment})"
    said = not_understood(booking.modifiers, holder, "that appointment's")
    return _undecided(decisions, f"{said}, so it was not checked")


def _no_rules(decisions: Decisions, what: str) -> tuple[CoverageJudgement, ...]:
    """Every Coverage's honest answer for a resource no policy here addresses."""
    return _undecided(
        decisions, f"this service holds no coverage rules for {what}; the payer's own requirements apply"
    )


# what an Encounter's "no rules here" names: the encounter's own coverage is the payer's requirements
ENCOUNTER_WORDS = "the encounter itself, as it judges only intrathecal pump orders"


def _code_words(resource: dict[str, Any]) -> str:
    """How a resource's code reads in a 'no rules for …' reason: its first coding, else its text."""
    for element in CODE_ELEMENTS:
        concept = resource.get(element)
        concept = dicts(concept)[0] if isinstance(concept, list) and dicts(concept) else concept
        coded = next(iter(codings(concept)), None)
        if coded is not None:
            return f"code {coded.code}" + (f" ({coded.display})" if coded.display else "")
        if text := concept_text(concept):
            return f"'{text}'"
    return f"{resource.get('resourceType')} {resource.get('id')}"


def _targets(decisions: Decisions, base_url: BaseUrl) -> list[CoverageTarget]:
    """Every resource that gets coverage information: each pump order its own determination, the
    other orders of its episode the principal order's, any other order an honest "no rules here". A
    booked Appointment repeats the assertion of the order it is based on (a pump order first), or
    says it could not be read; under CRD 2.2 an Appointment based on an order the answer annotates
    gets none of its own (one assertion per service and Coverage). An Appointment based on no order
    is an order of the call itself (profile-appointment-no-order). The hook's Encounter, where the
    service annotates it (`CallData.encounter`), an honest "no rules here": this service judges only
    intrathecal pump orders, whatever it finds about them."""
    if not decisions.routes:
        return []
    call = decisions.call
    pumps = {o.reference: o for o in call.pump_orders}
    judgements = _judgements(decisions, base_url)
    devices_unread = {u.order: u for u in call.unread if u.device is not None}
    targets = []
    for resource in call.in_scope:
        reference = reference_of(resource)
        if modifiers := _modified(decisions, reference):
            targets.append(CoverageTarget(reference, resource, None, modifiers))
        elif reference in pumps:
            targets.append(CoverageTarget(reference, resource, pumps[reference].code, judgements[reference]))
        elif reference in decisions.episode_orders:
            judged = judgements[decisions.episode_orders[reference]]
            targets.append(CoverageTarget(reference, resource, None, judged))
        elif reference in devices_unread:
            unread_device = devices_unread[reference]
            text = f"the device it orders could not be read ({unread_device.reason}), so it was not checked"
            undecided = _undecided(decisions, text, unread_device.technical)
            targets.append(CoverageTarget(reference, resource, None, undecided))
        else:
            unaddressed = _no_rules(decisions, _code_words(resource))
            targets.append(CoverageTarget(reference, resource, None, unaddressed))
    booking = DraftOrders(call.request.context.appointments or {}, call.request.fhir.server)
    annotated = {t.reference: t for t in targets}
    for appointment in call.appointments:
        reference = reference_of(appointment)
        if reference in annotated:
            continue  # based on no order: judged above as the order it is (profile-appointment-no-order)
        orders = based_on(appointment, booking, call.request.fhir.server)
        pump = next((pumps[ref] for ref in orders if ref in pumps), None)
        # its order could not be read (one at hand that it books carrying a modifier is annotated above)
        unread = next((u for u in call.unread if u.appointment == reference and not u.modifiers), None)
        order = annotated.get(pump.reference) if pump is not None else None
        if order is None and unread is None:
            order = next((annotated[ref] for ref in orders if ref in annotated), None)
        if order is not None and call.request.crd_version == "2.2":
            continue  # CRD 2.2: an Appointment based on a ServiceRequest is annotated on the request
        if modifiers := _modified(decisions, reference):
            targets.append(CoverageTarget(reference, appointment, None, modifiers))
        elif order is not None:  # judged under the order: its assertion
            targets.append(CoverageTarget(reference, appointment, order.billing, order.judgements, order))
        elif unread is not None:
            read = "was not judged" if unread.not_used else "could not be read"
            text = f"the order it is based on {read} ({unread.reason}), so it was not checked"
            undecided = _undecided(decisions, text, unread.technical)
            targets.append(CoverageTarget(reference, appointment, None, undecided))
        else:
            unaddressed = _no_rules(decisions, _code_words(appointment))
            targets.append(CoverageTarget(reference, appointment, None, unaddressed))
    if call.encounter is not None:  # the hook's Encounter (`HookBehaviour.on_encounter`): not ours to judge
        unaddressed = _no_rules(decisions, ENCOUNTER_WORDS)
        reference = reference_of(call.encounter)
        targets.append(CoverageTarget(reference, call.encounter, None, unaddressed, judged=False))
    return targets
