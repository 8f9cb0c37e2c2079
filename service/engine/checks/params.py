"""The typed parameter schema of the test types: each parameter kind checks a policy's value itself.

A test type declares its parameters as `Param`s of these kinds, next to its function; the policy
compiler asks each declared parameter to check the value a policy file gives it, so a wrong value
stops start-up with the reason instead of misjudging a patient later. A kind whose values are
assessment codes says so (`assessment_codes`), so that a documentation Questionnaire can ask for
them. Kinds that belong to one family (the routes of `medications.py`) are declared there.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from service.codes import LOINC_CODE
from service.engine.checks.common import COMPARATORS
from service.terminology import Terminology
from service.trial import SCALE_CODES


def expected(words: str, value: Any) -> str:
    """The problem with a value of the wrong shape, in the words every kind uses."""
    return f"expected {words}, got {value!r}"


class ParamKind(ABC):
    """One kind of test parameter; each is a frozen dataclass, so equal declarations compare equal."""

    @abstractmethod
    def check(self, value: Any, terminology: Terminology) -> str | None:
        """Why `value` cannot be a parameter of this kind (None when it can); the compiler adds where."""

    def assessment_codes(self, value: Any) -> tuple[str, ...]:
        """The assessment codes (contract §5) that a value of this kind names; none for most kinds."""
        return ()

    def unnamed_codes(self) -> tuple[str, ...]:
        """The assessment codes a test reads when a policy leaves a parameter of this kind out (what
        the test takes in its place); none for most kinds."""
        return ()


def _unknown_value_set(value_set_id: Any) -> str:
    return f"unknown value set '{value_set_id}'"


@dataclass(frozen=True)
class ValueSets(ParamKind):
    """A non-empty list of the ids of loaded value sets."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, list) or not value:
            return expected("a non-empty list of value set ids", value)
        return next((_unknown_value_set(ref) for ref in value if ref not in terminology), None)


@dataclass(frozen=True)
class ValueSetId(ParamKind):
    """The id of one loaded value set."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        return None if value in terminology else _unknown_value_set(value)


@dataclass(frozen=True)
class Comparator(ParamKind):
    """One of the `allowed` comparators (all of `COMPARATORS` unless narrowed)."""

    allowed: tuple[str, ...] = tuple(COMPARATORS)

    def check(self, value: Any, terminology: Terminology) -> str | None:
        return None if value in self.allowed else f"comparator must be one of {', '.join(self.allowed)}"


@dataclass(frozen=True)
class Count(ParamKind):
    """A positive whole number (months, days)."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            return expected("a positive whole number", value)
        return None


@dataclass(frozen=True)
class Number(ParamKind):
    """A number, zero or more (a threshold)."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            return expected("a number", value)
        return None


@dataclass(frozen=True)
class Text(ParamKind):
    """Words that are not blank (a finding to show)."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        return None if isinstance(value, str) and value.strip() else expected("text", value)


@dataclass(frozen=True)
class Flag(ParamKind):
    """True or false."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        return None if isinstance(value, bool) else expected("true or false", value)


@dataclass(frozen=True)
class Values(ParamKind):
    """A non-empty list of recorded values: codes, numbers or booleans."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str | bool | int | float) for v in value)
        ):
            return expected("a non-empty list of codes, numbers or booleans", value)
        return None


@dataclass(frozen=True)
class Codes(ParamKind):
    """A non-empty list of LOINC codes (a typo would match no Observation, silently)."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            return expected("a non-empty list of codes", value)
        malformed = [v for v in value if not LOINC_CODE.fullmatch(v)]
        return expected("LOINC codes (digits, a hyphen, a check digit)", malformed[0]) if malformed else None


@dataclass(frozen=True)
class Exactly(ParamKind):
    """One word only: a unit the type converts to, or a status it may give (`why` says what for)."""

    word: str
    why: str = ""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        return None if value == self.word else expected(f"{self.word!r}{self.why}", value)


@dataclass(frozen=True)
class AssessmentCode(ParamKind):
    """A code of the project's assessment CodeSystem (clinical-data-contract.md §5)."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, str) or value not in terminology.assessment_codes:
            return f"'{value}' is not an assessment code of clinical-data-contract.md §5"
        return None

    def assessment_codes(self, value: Any) -> tuple[str, ...]:
        return (value,)


@dataclass(frozen=True)
class ScaleCode(ParamKind):
    """The assessment code of one spasticity scale."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        return None if value in SCALE_CODES else expected(f"one of {', '.join(SCALE_CODES)}", value)

    def assessment_codes(self, value: Any) -> tuple[str, ...]:
        return (value,)


@dataclass(frozen=True)
class ScaleCodes(ParamKind):
    """A non-empty list of the assessment codes of spasticity scales."""

    def check(self, value: Any, terminology: Terminology) -> str | None:
        if not isinstance(value, list) or not value or any(v not in SCALE_CODES for v in value):
            return expected(f"a list of {', '.join(SCALE_CODES)}", value)
        return None

    def assessment_codes(self, value: Any) -> tuple[str, ...]:
        return tuple(value)

    def unnamed_codes(self) -> tuple[str, ...]:
        return SCALE_CODES  # left out, every scale counts (trials.py `_ScaleJudge`)


@dataclass(frozen=True)
class Param:
    """A declared test parameter: its kind, whether a policy must give it, and what it is for (`why`:
    said when a policy leaves a required one out)."""

    kind: ParamKind
    required: bool = True
    why: str = ""


def optional(kind: ParamKind) -> Param:
    return Param(kind, required=False)


VALUE_SETS = Param(ValueSets())
MISSING_TEXT = optional(Text())  # the finding when nothing qualifying is found
# The same, required: the only words a card has for a test whose codes carry none of their own (a LOINC
# code has no display in the catalog, where an assessment code has its own, assessment-codes.yaml)
MISSING_WORDS = Param(
    Text(),
    why=(
        "the words a card says when no result is recorded, what is missing before its codes, "
        "as 'no life expectancy (LOINC 75327-7) recorded'; without them a card has only the codes"
    ),
)
