"""The facts' quick `__init__` (service/facts.py `quick_init`): each fact class is made exactly as the
plain frozen dataclass of its fields would be (signature, defaults, values, equality, hash, repr, still
frozen), only without `object.__setattr__` per field."""

from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any

import pytest

from service import dataclass_cache, facts
from service.dataclass_cache import cache_file, dataclass_code_cached, read_cache
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


def test_its_code_comes_from_the_start_ups_cache_as_dataclass_code_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compiled once across start-ups (service/dataclass_cache.py), as `dataclass`'s own methods are:
    a second start-up compiles nothing for it."""
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("IDDS_CRD_CATALOG_CACHE", str(directory))

    def make() -> type:
        @dataclasses.dataclass(frozen=True, slots=True)
        class Pair:
            left: str
            right: str = "none"

        return quick_init(Pair)

    with dataclass_code_cached():
        make()
    assert any("_set_left(self, left)" in str(key) for key in read_cache(cache_file(directory)))

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("compiled although the cache holds the code")

    monkeypatch.setattr(dataclass_cache, "compile", refuse, raising=False)
    with dataclass_code_cached():
        pair = make()("a")
    assert (pair.left, pair.right) == ("a", "none")
