"""Next steps the service can propose as orders, decided from a Determination and the record.

Kept apart from the engine (which judges criteria) and from the cards (which only render): the one
step here is "order the intrathecal trial first", for a permanent implant ordered while neither the
chart nor the other draft orders show any trial, and the payer's policy asks for one.
"""

from __future__ import annotations

from service.engine.model import CriterionResult, Determination, Status
from service.policy import Policy
from service.record import PatientRecord

TRIAL_TEST_TYPES = frozenset({"trial-relief", "scale-trial-response"})


def missing_trial(
    d: Determination, policy: Policy, record: PatientRecord, episode_kinds: frozenset[str]
) -> tuple[CriterionResult, ...]:
    """The implant's trial criteria when all are undocumented because no trial happened at all, else ().

    Not when the trial is among the draft orders, not when a trial procedure is on the chart, dated
    or not (then its result is what is missing: the instructions say so), and not when the data could
    not be read.
    """
    if d.request_kind != "permanent-implant" or "trial" in episode_kinds:
        return ()
    if (
        record.trial.procedure is not None
        or record.trial.explicit is not None
        or record.trial.undated is not None
    ):
        return ()
    trial_ids = {i for t in TRIAL_TEST_TYPES for i in policy.ids_by_test_type.get(t, ())}
    results = tuple(r for top in d.criteria for r in top.walk() if r.id in trial_ids)
    if all(r.status == Status.NOT_DOCUMENTED and r.unchecked_reason is None for r in results):
        return results
    return ()
