"""Policy and value-set files: the shipped ones compile, and broken ones stop start-up clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import policies
from service.app import create_app
from service.catalog import load_catalog
from service.codes import Code
from service.policy import PolicyError
from service.terminology import ValueSetError
from tests.builders import GEHA_CRITERIA


def copy_policies(tmp_path: Path) -> Path:
    target = tmp_path / "policies"
    shutil.copytree(policies.directory(), target, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return target


def test_shipped_catalog_compiles_with_every_geha_criterion_cited() -> None:
    catalog = load_catalog()
    geha = catalog.policies["geha-idds-chronic-pain"]
    ids = []

    def walk(specs: tuple) -> None:
        for spec in specs:
            ids.append(spec.id)
            assert spec.section and spec.text
            walk(spec.children)

    walk(geha.criteria)
    for expected in GEHA_CRITERIA:
        assert expected in ids


def test_geha_texts_are_the_seed_words() -> None:
    seed = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_77fb8b59100a0397.txt"
    if not seed.exists():
        pytest.skip(f"the seed policies are not beside the repository ({seed})")
    words = " ".join(seed.read_text(encoding="utf-8").split())
    geha = load_catalog().policies["geha-idds-chronic-pain"]

    def walk(specs: tuple) -> None:
        for spec in specs:
            assert spec.text in words, spec.id
            walk(spec.children)

    walk(geha.criteria)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (Code("icd10cm", "G89.29"), True),
        (Code("icd10cm", "G8929"), True),
        (Code("icd10cm", "G89.11"), False),
        (Code("icd10cm", "G89.3"), False),
        (Code("snomed", "82423001"), True),
    ],
)
def test_chronic_pain_value_set(code: Code, expected: bool) -> None:
    assert load_catalog().terminology["chronic-pain"].matches(code) is expected


def test_icd_exclusions_apply() -> None:
    psych = load_catalog().terminology["psych-acute"]
    assert psych.matches(Code("icd10cm", "F31.2"))
    assert not psych.matches(Code("icd10cm", "F31.72"))


def mutate_geha(root: Path, edit) -> None:  # type: ignore[no-untyped-def]
    path = root / "geha.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    edit(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda raw: raw["criteria"][0]["test"].update(valuesets=["no-such-set"]),
            "unknown value set 'no-such-set'",
        ),
        (lambda raw: raw["criteria"][0]["test"].update(type="telepathy"), "unknown type 'telepathy'"),
        (lambda raw: raw["criteria"][0]["test"].update(comparator="~"), "comparator must be one of"),
        (lambda raw: raw["criteria"][0]["test"].pop("months"), "needs months"),
        (lambda raw: raw["criteria"][0].pop("section"), "'section' must be a non-empty string"),
        (lambda raw: raw["criteria"][1].update(id=raw["criteria"][0]["id"]), "criterion id used twice"),
        (lambda raw: raw["criteria"][0].update(role="optional"), "role must be one of"),
        (lambda raw: raw["scope"].update(indications=["migraine"]), "unknown value(s) ['migraine']"),
        (lambda raw: raw.update(extra=1), "unknown key(s) extra"),
    ],
)
def test_broken_policy_names_file_criterion_and_reason(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    root = copy_policies(tmp_path)
    mutate_geha(root, edit)
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    assert "geha.yaml" in str(caught.value)
    assert message in str(caught.value)


def test_broken_value_set_names_the_file(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    (root / "valuesets" / "opioids.yaml").write_text(
        "id: opioids\ntitle: x\nreference: y\nrxnorm:\n  - {code: 1}\n"
    )
    with pytest.raises(ValueSetError, match=r"opioids.yaml.rxnorm\[0\]"):
        load_catalog(root)


def test_the_service_refuses_to_start_on_a_broken_policy(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    mutate_geha(root, lambda raw: raw["criteria"][0]["test"].update(valuesets=["gone"]))
    with pytest.raises(PolicyError):
        create_app(catalog=load_catalog(root))
