"""The facts' quick `__init__` (service/facts.py `quick_init`): each fact class is made exactly as the
plain frozen dataclass of its fields would be (signature, defaults, values, equality, hash, repr, still
frozen), only without `object.__setattr__` per field."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from service import facts
from service.facts import quick_init

FACT_CLASSES = [
    facts.ConditionFact,
    facts.MedicationFact,
    facts.ProcedureFact,
    facts.ObservationFact,
    facts.DeviceFact,
    facts.AllergyFact,
    facts.MedicationExposure,
]


def _plain(cls: type) -> type:
    """The frozen, slotted dataclass of `cls`'s fields, with `dataclass`'s own `__init__`."""
    spec = [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(cls)]
    return dataclasses.make_dataclass(cls.__name__, spec, frozen=True, slots=True)


@pytest.mark.parametrize("cls", FACT_CLASSES)
def test_a_fact_is_made_as_its_plain_dataclass_would_be(cls: type) -> None:
    plain = _plain(cls)
    assert inspect.signature(cls.__init__) == inspect.signature(plain.__init__)
    required = [f for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    values: dict[str, Any] = {f.name: f"value of {f.name}" for f in required}
    for made, reference in (
        (cls(**values), plain(**values)),
        (cls(*values.values()), plain(*values.values())),
        (cls(*[f.name for f in dataclasses.fields(cls)]), plain(*[f.name for f in dataclasses.fields(cls)])),
    ):
        assert dataclasses.astuple(made) == dataclasses.astuple(reference)
        assert repr(made) == repr(reference).replace(f"types.{cls.__name__}", cls.__qualname__)
        assert made == cls(*dataclasses.astuple(made)) and hash(made) == hash(cls(*dataclasses.astuple(made)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, dataclasses.fields(cls)[0].name, "changed")
    with pytest.raises(TypeError):
        cls()
    # the point: no `object.__setattr__` (looked up through the class for every field) per field
    assert "__dataclass_builtins_object__" not in cls.__init__.__code__.co_freevars


def test_a_field_it_cannot_write_plainly_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Listed:
        items: list[str] = dataclasses.field(default_factory=list)

    with pytest.raises(TypeError, match="plain defaults only"):
        quick_init(Listed)
