"""A test's outcome is shared by every order and policy of a call (service/engine/evaluate.py `_run`),
which is right only while no test type (nor a helper beside it) reads what differs between them; and
a policy's criteria results are shared by the orders of a call with the same kind and indication
(`_criteria_results`), which is right only while evaluating a criterion never reads the order."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import replace

import service.engine.checks as checks
from service.engine import evaluate
from service.engine.checks import TEST_TYPES
from tests.builders import catalog, context, infusate_request, meeting_chart, service_request

ORDER_LEVEL = re.compile(r"\bctx\.(order|request_kind|indication|episode_kinds)\b")


def test_no_test_type_reads_the_order_its_kind_or_its_indication() -> None:
    modules = {inspect.getmodule(kind.function) for kind in TEST_TYPES.values()}
    modules |= {
        importlib.import_module(f"{checks.__name__}.{m.name}") for m in pkgutil.iter_modules(checks.__path__)
    }
    reads = {module.__name__: ORDER_LEVEL.findall(inspect.getsource(module)) for module in modules if module}
    assert len(reads) > 5
    assert {name: found for name, found in reads.items() if found} == {}


def test_the_check_would_see_such_a_read() -> None:
    assert ORDER_LEVEL.findall("if ctx.request_kind == 'replacement': ...") == ["request_kind"]


CRITERION_LEVEL = re.compile(r"\bctx\.(order|episode_kinds)\b")  # kind and indication are in the memo key


def test_evaluating_a_criterion_never_reads_the_order() -> None:
    functions = (
        evaluate._criteria_results,
        evaluate._evaluate,
        evaluate._leaf,
        evaluate._unchecked,
        evaluate._run,
    )
    reads = {f.__name__: CRITERION_LEVEL.findall(inspect.getsource(f)) for f in functions}
    assert {name: found for name, found in reads.items() if found} == {}
    assert CRITERION_LEVEL.findall(inspect.getsource(evaluate.evaluate_order))  # the check sees such reads


def test_orders_of_one_kind_and_indication_share_the_criteria_results_of_a_policy() -> None:
    policy = catalog().policies["geha-idds-chronic-pain"]
    chart, drugs = meeting_chart(), (infusate_request(),)
    pump = context(chart, drugs=drugs, companions=(service_request("62350"),))
    catheter_order = context(chart, service_request("62350"), drugs, companions=(service_request(),))
    catheter = replace(pump, order=catheter_order.order)  # the same call: one memo
    first, second = evaluate.evaluate_order(policy, pump), evaluate.evaluate_order(policy, catheter)
    assert first.order_reference != second.order_reference
    assert (first.request_kind, first.indication) == (second.request_kind, second.indication)
    assert second.criteria is first.criteria
    alone = evaluate.evaluate_order(policy, catheter_order)  # its own call: evaluated afresh
    assert alone.criteria == first.criteria and alone.criteria is not first.criteria


def test_orders_of_one_call_with_different_reasons_do_not_share_the_tests_that_read_the_reason() -> None:
    """Cohere's "applies" checks read the order's reason (no-condition `order_reason`): two trials of
    one call, one for chronic pain, one for bone-metastasis pain, each judged by its own reason, in
    whichever order the call lists them (s35 review R1)."""
    from tests.builders import ICD, assessment, concept, condition, fentanyl_patch_stopped, metastasis_stage

    policy = catalog().policies["cohere-intrathecal-pain-pumps"]
    chart = [
        condition(ICD, "M96.1", "2022-03-01", "Postlaminectomy syndrome"),
        metastasis_stage("M1", "2026-05-01"),
        assessment("life-expectancy-ge-3mo", "2026-11-01", valueBoolean=True),
        fentanyl_patch_stopped(),
    ]
    drugs = (infusate_request(),)
    cancer = service_request("62324", reason=[concept(ICD, "C79.51", "Secondary malignant neoplasm of bone")])
    pain = service_request("62324", reason=[concept(ICD, "G89.4", "Chronic pain syndrome")])
    alone = evaluate.evaluate_order(policy, context(chart, cancer, drugs, companions=(pain,)))
    first = context(chart, pain, drugs, companions=(cancer,))
    evaluate.evaluate_order(policy, first)
    second = evaluate.evaluate_order(policy, replace(first, order=context(chart, cancer, drugs).order))
    assert alone.outcome == second.outcome
    assert [r.status for r in alone.criteria] == [r.status for r in second.criteria]


def test_orders_of_other_reasons_share_the_criteria_results_of_a_policy_whose_tests_read_none() -> None:
    """An implant and its catheter each giving a reason of the one indication (a chronic pain code on
    one, postlaminectomy on the other): GEHA reads no order's reason, so its criteria are judged once
    for both, as for orders giving none; Cohere's, whose tests read the reason, are each order's."""
    from tests.builders import ICD, concept

    chart, drugs = meeting_chart(), (infusate_request(),)
    pain = service_request(reason=[concept(ICD, "G89.4", "Chronic pain syndrome")])
    laminectomy = service_request("62350", reason=[concept(ICD, "M96.1", "Postlaminectomy syndrome")])
    implant = context(chart, pain, drugs, companions=(laminectomy,))
    catheter = replace(implant, order=context(chart, laminectomy, drugs, companions=(pain,)).order)
    geha = catalog().policies["geha-idds-chronic-pain"]
    cohere = catalog().policies["cohere-intrathecal-pain-pumps"]
    assert not geha.reads_order_reason and cohere.reads_order_reason
    first, second = evaluate.evaluate_order(geha, implant), evaluate.evaluate_order(geha, catheter)
    assert (first.request_kind, first.indication) == (second.request_kind, second.indication)
    assert second.criteria is first.criteria
    first, second = evaluate.evaluate_order(cohere, implant), evaluate.evaluate_order(cohere, catheter)
    assert second.criteria is not first.criteria
