"""A test's outcome is shared by every order and policy of a call (service/engine/evaluate.py `_run`),
which is right only while no test type (nor a helper beside it) reads what differs between them."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import service.engine.checks as checks
from service.engine.checks import TEST_TYPES

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
