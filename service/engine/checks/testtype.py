"""How a test type is declared: once, by a decorator on its function, with its parameter schema.

`@test_type(name, params=..., reads=...)` turns the function into a `TestType` in its family
module; the package collects the family modules' types into the registry (`TEST_TYPES`), so a
test type's name, function, parameters and reads are written in one place and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

from service.engine.checks.params import Param
from service.engine.context import EvaluationContext
from service.engine.model import TestOutcome
from service.terminology import Terminology

TestFunction = Callable[[Mapping[str, Any], EvaluationContext], TestOutcome]
CrossCheck = Callable[[Mapping[str, Any]], str | None]


@dataclass(frozen=True)
class TestType:
    """A registered test type: its function, its parameters, the resource types it reads, and the
    assessment codes it reads without a parameter naming them (a documentation form asks for these).
    `also_reads`: the resource types that may add a record of its fact besides the forms the contract
    names (`reads`): the answers to the service's documentation questionnaire (contract §5's item
    codes, service/record.py `_questionnaire_answers`; of them, those answering the assessment codes
    it reads, `codes_read`). While one cannot be read, a result not documented cannot be trusted (the
    card would ask to record what the chart may record); a result a record settles, this test's or
    another form's of the fact (evaluate.py `_leaf`), can (contract §3: a form that documents the
    fact decides over a form that is absent), and so can one met by absence (§3: no evidence found
    "in the data above", the forms the contract names)."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    function: TestFunction
    params: Mapping[str, Param]
    reads: tuple[str, ...]
    asks: tuple[str, ...] = ()
    check: CrossCheck | None = None  # rules across parameters: the problem, or None
    also_reads: tuple[str, ...] = ()
    # the parameters naming value sets whose words it reads a diagnosis by (`worded_conditions`): a diagnosis
    # no value set so named names, coded by none a policy reads, is read by none (service/record.py)
    words: tuple[str, ...] = ()

    def words_read(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The value sets a test of this type with `params` reads a diagnosis's words against (`words`)."""
        return tuple(vs for name in self.words for vs in params.get(name, ()))

    def __call__(self, params: Mapping[str, Any], ctx: EvaluationContext) -> TestOutcome:
        return self.function(params, ctx)

    def codes_named(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The assessment codes a test of this type with `params` reads that a documentation form
        asks for: the type's own (`asks`) and those its parameters name."""
        named = (
            code
            for name, value in params.items()
            if (param := self.params.get(name)) is not None
            for code in param.kind.assessment_codes(value)
        )
        return (*self.asks, *named)

    def codes_read(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """Every assessment code a test of this type with `params` reads: those named
        (`codes_named`), and those a parameter the policy leaves out stands for (a spasticity trial
        without `scales` reads every scale). Which records of `also_reads` it reads: a response
        left out answering none of them leaves it whole (`PatientRecord.unread`)."""
        unnamed = (
            code
            for name, param in self.params.items()
            if name not in params
            for code in param.kind.unnamed_codes()
        )
        return (*self.codes_named(params), *unnamed)

    def problem(self, params: Mapping[str, Any], terminology: Terminology) -> str | None:
        """Why `params` cannot be this type's parameters, to follow where they are (": ..." or
        ".name: ..."); None when they can."""
        missing = sorted(name for name, spec in self.params.items() if spec.required and name not in params)
        unknown = sorted(set(params) - set(self.params))
        if missing:
            why = "".join(f" ({self.params[name].why})" for name in missing if self.params[name].why)
            return f": '{self.name}' needs {', '.join(missing)}{why}"
        if unknown:
            return f": '{self.name}' does not take {', '.join(unknown)}"
        for name, value in params.items():
            if found := self.params[name].kind.check(value, terminology):
                return f".{name}: {found}"
        if self.check is not None and (found := self.check(params)):
            return f": {found}"
        return None


def test_type(
    name: str,
    *,
    params: Mapping[str, Param],
    reads: tuple[str, ...],
    asks: tuple[str, ...] = (),
    check: CrossCheck | None = None,
    also_reads: tuple[str, ...] = (),
    words: tuple[str, ...] = (),
) -> Callable[[TestFunction], TestType]:
    """Declare the decorated function as the test type `name` (the word a policy file uses)."""

    def declare(function: TestFunction) -> TestType:
        return TestType(name, function, MappingProxyType(dict(params)), reads, asks, check, also_reads, words)

    return declare


def collect(*families: ModuleType) -> Mapping[str, TestType]:
    """The test types the family modules declare, by name; a name declared twice is a programming error."""
    found: dict[str, TestType] = {}
    for family in families:
        for declared in vars(family).values():
            if not isinstance(declared, TestType) or declared.function.__module__ != family.__name__:
                continue
            if declared.name in found:
                raise ValueError(f"test type '{declared.name}' is declared twice")
            found[declared.name] = declared
    return MappingProxyType(found)
