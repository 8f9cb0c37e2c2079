"""Which criteria apply to an order: top-level criteria by request kind and indication, and the
sub-criteria of an either/or group by indication.

Payers write one list for several indications ("pain OR spasticity, each with its own drug"). Once
the order's indication is known, the branches written for another indication are dropped before
evaluation, so neither the judgement nor the card speaks of the other indication's criteria; a
group left with one branch is that branch, written for the indications of both. While the
indication is not evident every branch is kept: the policy's own words, judged with three-valued
logic; while only its kind is known (pain, its drug says, but whether cancer pain is unread), the
branches of that kind are.
"""

from __future__ import annotations

from dataclasses import replace

from service.policy import CriterionSpec


def applies(spec: CriterionSpec, kind: str, indication: str) -> bool:
    """A top-level criterion applies to the request kind and the (possibly assumed) indication."""
    return (spec.kinds is None or kind in spec.kinds) and (
        spec.indications is None or indication in spec.indications
    )


def for_indication(spec: CriterionSpec, indications: frozenset[str] | None) -> CriterionSpec | None:
    """`spec` without the sub-criteria of indications other than `indications` (the order's, or the
    ones it may be; None when nothing of it is left); a group left with one sub-criterion is that
    sub-criterion. `indications` None keeps every branch."""
    if indications is None:
        return spec
    if spec.indications is not None and indications.isdisjoint(spec.indications):
        return None
    if spec.logic is None:
        return spec
    children = tuple(
        kept for child in spec.children if (kept := for_indication(child, indications)) is not None
    )
    if not children:
        return None
    if len(children) == 1:  # it stands for its group: written for the group's indications at most
        [child] = children
        return child if child.indications is not None else replace(child, indications=spec.indications)
    return replace(spec, children=children)
