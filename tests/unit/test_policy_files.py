"""Policy and value-set files: the shipped ones compile, and broken ones stop start-up clearly."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import policies
from service.app import create_app
from service.catalog import cached_catalog, load_catalog
from service.codes import Code
from service.orders import OrderCodesError
from service.policy import PolicyError
from service.routing import RoutingError
from service.terminology import ValueSetError
from service.yamlsource import SourceError, load, strict_loader
from tests.builders import GEHA_CRITERIA
from tests.catalog_support import copy_policies, edit_yaml, line_of, replace_once


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


SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"


@pytest.mark.parametrize("policy_id", sorted(load_catalog().policies))
def test_every_quote_is_the_seed_words(policy_id: str) -> None:
    """Each criterion's `text` and the policy's `dates_as_stated` are verbatim (whitespace-normalised)
    excerpts of the policy's source document."""
    policy = load_catalog().policies[policy_id]
    seed = SEEDS / Path(policy.source).name
    if not seed.exists():
        pytest.skip(f"the seed policies are not beside the repository ({seed})")
    words = " ".join(seed.read_text(encoding="utf-8").split())
    for spec in policy.all_criteria():
        assert spec.text in words, spec.id
    assert policy.currency.stated in words
    assert policy.currency.effective.isoformat()[:4] in policy.currency.stated


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
    edit_yaml(root / "geha.yaml", edit)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda raw: raw["criteria"][0]["test"].update(valuesets=["no-such-set"]),
            "criteria.0.test (geha.chronic-pain.duration-6mo).valuesets: unknown value set 'no-such-set'",
        ),
        (lambda raw: raw["criteria"][0]["test"].update(type="telepathy"), "unknown test type 'telepathy'"),
        (lambda raw: raw["criteria"][0]["test"].update(comparator="<"), "comparator must be one of >, >="),
        (
            lambda raw: raw["criteria"][0]["test"].update(months="six"),
            "months: expected a positive whole number",
        ),
        (lambda raw: raw["criteria"][0]["test"].pop("months"), "needs months"),
        (lambda raw: raw["criteria"][2]["all"][0]["test"].update(months=2), "give either days or months"),
        (lambda raw: raw["criteria"][2]["all"][0]["test"].pop("days"), "give either days or months"),
        (lambda raw: raw["criteria"][0].pop("section"), "criteria.0: 'section' is a required property"),
        (
            lambda raw: raw["criteria"][0].update(text="Chronic pain for more than 3 months"),
            "criteria.0.text (geha.chronic-pain.duration-6mo): its text is not in "
            "sources/000_77fb8b59100a0397.txt",
        ),
        (
            lambda raw: raw.update(dates_as_stated="Origination: Jan 2026"),
            "dates_as_stated: its text is not in sources/",
        ),
        (
            lambda raw: raw.update(source="seeds/withdrawn.txt"),
            "source: sources/withdrawn.txt is not there",
        ),
        (
            lambda raw: [raw.pop(key) for key in ("payer", "title", "dates_as_stated")],
            "(top level): 'payer', 'title', 'dates_as_stated' are required properties",
        ),
        (
            lambda raw: raw["criteria"][1].update(id=raw["criteria"][0]["id"]),
            "criterion id used twice (first on line",
        ),
        (lambda raw: raw["criteria"][0].update(role="optional"), "criteria.0.role: 'optional' is not one of"),
        (
            lambda raw: raw["scope"].update(indications=["migraine"]),
            "scope.indications.0: 'migraine' is not one of",
        ),
        (
            lambda raw: raw["criteria"][4].update(kinds=["implant"]),
            "criteria.4.kinds.0: 'implant' is not one of permanent-implant, replacement",
        ),
        (
            lambda raw: raw["scope"]["not_addressed"].update(migraine="not covered"),
            "'migraine' is no indication or request kind of vocabulary.yaml",
        ),
        (lambda raw: raw.update(extra=1), "Additional properties are not allowed ('extra' was unexpected)"),
        (
            lambda raw: raw["criteria"][2]["all"][0].update(kinds=["trial"]),
            "'kinds' belongs on the top-level criterion",
        ),
        (
            lambda raw: raw["criteria"][2]["all"][0].update(indications=["spasticity"]),
            "(geha.chronic-pain.opioid-failure-6wk.duration): 'indications' spasticity not among the "
            "indications it is nested in (non-malignant-pain)",
        ),
        (
            lambda raw: [
                raw["scope"].update(indications=["non-malignant-pain", "spasticity"]),
                *(child.update(indications=["non-malignant-pain"]) for child in raw["criteria"][2]["all"]),
            ],
            "(geha.chronic-pain.opioid-failure-6wk): no sub-criterion applies to spasticity",
        ),
        (
            lambda raw: raw["criteria"][5]["test"].update(code="made-up"),
            "'made-up' is not an assessment code",
        ),
        (lambda raw: raw["criteria"][5]["test"].update(code=[]), "'[]' is not an assessment code"),
        (
            lambda raw: raw["criteria"][0]["test"].update(valuesets=[["chronic-pain"]]),
            "unknown value set '['chronic-pain']'",
        ),
        (
            lambda raw: raw["criteria"][5]["test"].update(comparator=">=", value=1),
            "'assessment' takes either met/not_met (listed values) or comparator and value",
        ),
        (
            lambda raw: raw["criteria"][5].update(
                test={"type": "assessment", "code": "psych-clearance", "comparator": ">="}
            ),
            "'assessment' needs comparator and value together",
        ),
        (lambda raw: raw["criteria"][5].update(forms=[raw["criteria"][5].pop("test")]), "is too short"),
        (
            lambda raw: raw["criteria"][5].update(
                forms=[
                    raw["criteria"][5].pop("test"),
                    {"type": "observation-value", "loinc": ["75327-7"], "comparator": "~", "value": 3},
                ]
            ),
            "forms.1 (geha.",
        ),
        (lambda raw: raw["criteria"][5].update(same_day="either"), "'forms' is a dependency of 'same_day'"),
        (
            lambda raw: raw["criteria"][5].update(
                forms=[
                    raw["criteria"][5].pop("test"),
                    {"type": "assessment", "code": "psych-clearance", "met": [True]},
                ],
                same_day="both",
            ),
            "same_day: 'both' is not one of ['either']",
        ),
    ],
)
def test_broken_policy_names_file_line_and_reason(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    root = copy_policies(tmp_path)
    mutate_geha(root, edit)
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    assert re.match(r"geha\.yaml:\d+: ", str(caught.value)), str(caught.value)
    assert message in str(caught.value)


def test_the_line_number_points_at_the_broken_criterion(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    path = root / "geha.yaml"
    text = path.read_text(encoding="utf-8").replace("type: trial-relief", "type: trial-reliefs")
    path.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "trial-reliefs" in row)
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    reported = int(str(caught.value).split(":")[1])
    assert abs(reported - line) <= 1


@pytest.mark.parametrize(
    ("file", "field", "code"),
    [
        ("programmable-device.yaml", "cpt", "9711X"),
        ("malignancy.yaml", "icd10cm", "C50-911"),
        ("chronic-pain.yaml", "snomed", "8242300l"),
        ("opioids.yaml", "rxnorm.0.products", "RX892531"),
    ],
)
def test_a_malformed_code_in_a_value_set_is_refused(tmp_path: Path, file: str, field: str, code: str) -> None:
    """A code that cannot be one of its system (a typo) would never match: it is refused, not shipped."""
    root = copy_policies(tmp_path)

    def put_first(raw: Any) -> None:
        where = raw
        *parents, last = field.split(".")
        for step in parents:
            where = where[int(step)] if step.isdigit() else where[step]
        where[last] = [code, *where.get(last, [])]

    edit_yaml(root / "valuesets" / file, put_first)
    with pytest.raises(ValueSetError, match=rf"{file}:\d+: {re.escape(field)}.0: '{code}' does not match"):
        load_catalog(root)


def test_a_malformed_code_a_removal_undoes_is_refused(tmp_path: Path) -> None:
    """A typo in what a removal undoes would make the removal undo nothing (session review s35, R7)."""
    root = copy_policies(tmp_path)
    edit_yaml(
        root / "valuesets" / "programmable-device.yaml",
        lambda raw: raw["removals"].update({"33241": ["3324"]}),
    )
    with pytest.raises(
        ValueSetError, match=r"programmable-device.yaml:\d+: removals.33241.0: '3324' does not match"
    ):
        load_catalog(root)


def test_a_malformed_loinc_code_in_a_policy_test_is_refused(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    path = root / "cohere.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("21907-1", "219071", 1), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"cohere\.yaml:\d+: .*loinc.*'219071'"):
        load_catalog(root)


def test_a_payer_key_used_twice_is_refused(tmp_path: Path) -> None:
    """The audit trail and the metrics name a payer by its key: two payers under one key would merge."""
    root = copy_policies(tmp_path)
    edit_yaml(root / "payers.yaml", lambda raw: raw["payers"][1].update(key=raw["payers"][0]["key"]))
    with pytest.raises(
        RoutingError, match=r"payers.yaml:\d+: payers.1.key: payer key '[a-z0-9-]+' is already used by payer"
    ):
        load_catalog(root)


def test_the_words_that_say_not_this_are_the_value_sets_data(tmp_path: Path) -> None:
    """words20 (debt 1): which words make "History of pneumonia" name no current infection is the
    infection value set's `not_this`, not a list in the code: taking "history" out of the file changes
    the answer, and nothing else does."""
    history = "History of pneumonia (situation)"
    assert not load_catalog().terminology["infection"].names_in_words(history)
    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", lambda raw: raw["not_this"]["before"].remove("history"))
    edited = load_catalog(root).terminology["infection"]
    assert edited.names_in_words(history)
    assert not edited.names_in_words("No evidence of pneumonia")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda raw: raw["not_this"]["before"].append("sequelae?"),
            r"not_this\.before\.\d+: 'sequelae\?' does not",
        ),
        (lambda raw: raw["not_this"]["after"].append("Control"), r"not_this\.after\.\d+: 'Control' does not"),
        (lambda raw: raw["not_this"].update(unless=["with"]), r"not_this\.unless: Additional properties"),
        (lambda raw: raw.pop("text"), r"\(top level\): 'text' is a dependency of 'not_this'"),
    ],
    ids=["a-pattern-not-a-word", "capitals", "unknown-key", "no-words-to-qualify"],
)
def test_a_malformed_not_this_is_refused_by_policies_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Callable[[Any], object], message: str
) -> None:
    """A `not_this` word is plain lower-case words (a space any white space, a final `*` any ending):
    a regular expression, capitals or a key the compiler does not read would silently match nothing."""
    from service.cli import main

    root = copy_policies(tmp_path)
    edit_yaml(root / "valuesets" / "infection.yaml", edit)
    assert main(["policies", "check", str(root)]) == 1
    error = capsys.readouterr().err
    assert re.search(rf"valuesets/infection\.yaml:\d+: {message}", error), error


@pytest.mark.parametrize(
    ("words", "criterion", "test_type"),
    [
        ("no life expectancy (LOINC 75327-7) recorded", "cohere.cancer.le-3mo.recorded", "observation-value"),
        (
            "no metastatic stage M1 (LOINC 21901-4, 21907-1) recorded",
            "cohere.cancer.metastatic",
            "observation-category",
        ),
        (
            "no life expectancy (LOINC 75327-7) recorded",
            "cohere.cancer.le-3mo.no-terminal-conflict",
            "observation-value",
        ),
    ],
    ids=["observation-value", "observation-category", "a-clearance-by-a-value"],
)
def test_an_observation_test_without_words_for_cards_stops_policies_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], words: str, criterion: str, test_type: str
) -> None:
    """words20 (debt 3, cardfix19's not done): a LOINC code has no words of its own in the catalog, so an
    observation test's `missing` is all a card can say of it: a test without them is refused at start-up,
    naming the criterion, where before a card said "no LOINC 75327-7 result recorded"."""
    from service.cli import main

    root = copy_policies(tmp_path)
    path = root / "cohere.yaml"
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if f"id: {criterion}" in line)
    at = next(i for i in range(start, len(lines)) if f'missing: "{words}"' in lines[i])
    lines[at] = lines[at].replace(f', missing: "{words}"', "")
    path.write_text("".join(lines), encoding="utf-8")
    assert main(["policies", "check", str(root)]) == 1
    error = capsys.readouterr().err
    named = rf"cohere\.yaml:\d+: criteria\.\S+ \({re.escape(criterion)}\)\S*: "
    assert re.search(rf"{named}'{test_type}' needs missing \(the words a card says", error), error


def test_broken_value_set_names_the_file_and_line(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    (root / "valuesets" / "opioids.yaml").write_text(
        "id: opioids\ntitle: x\nreference: y\nrxnorm:\n  - {code: '1'}\n"
    )
    with pytest.raises(ValueSetError, match=r"opioids.yaml:5: rxnorm.0: 'ingredient' is a required property"):
        load_catalog(root)


def test_the_service_refuses_to_start_on_a_broken_policy(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    mutate_geha(root, lambda raw: raw["criteria"][0]["test"].update(valuesets=["gone"]))
    with pytest.raises(PolicyError):
        create_app(catalog=load_catalog(root))


def test_policies_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from service.cli import main

    assert main(["policies", "check"]) == 0
    assert "policies OK: " in capsys.readouterr().out
    root = copy_policies(tmp_path)
    path = root / "geha.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("months: 6", "months: -6"), encoding="utf-8")
    assert main(["policies", "check", str(root)]) == 1
    error = capsys.readouterr().err
    pattern = r"geha\.yaml:\d+: criteria\.0\.test .*months: expected a positive whole number"
    assert re.search(pattern, error), error


def shipped_yaml_files() -> list[Path]:
    return sorted(policies.directory().rglob("*.yaml"))


@pytest.mark.parametrize("path", shipped_yaml_files(), ids=lambda p: p.name)
def test_the_fast_parser_reads_every_shipped_file_as_the_pure_python_one_does(path: Path) -> None:
    fast = load(path)
    pure = load(path, yaml.SafeLoader)
    assert fast.data == pure.data
    assert fast.lines == pure.lines
    assert len(fast.lines) > 1


def test_a_file_that_is_not_yaml_names_file_line_and_the_parsers_words(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    path = root / "geha.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    broken = next(i for i, row in enumerate(lines) if row.startswith("criteria:")) + 1
    lines.insert(broken, "  - id: x\n   y: : [")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    message = str(caught.value)
    with pytest.raises(yaml.YAMLError) as pure:
        yaml.safe_load(path.read_text(encoding="utf-8"))
    assert message.startswith(f"geha.yaml:{pure.value.problem_mark.line + 1}: not valid YAML: "), message
    assert message.endswith(str(pure.value.problem)), message


def test_a_key_given_twice_is_refused_at_its_second_line(tmp_path: Path) -> None:
    """YAML keeps the later of two equal keys silently; a policy author meant one of them."""
    root = copy_policies(tmp_path)
    path = root / "geha.yaml"
    lines = path.read_text(encoding="utf-8").splitlines()
    title = next(i for i, row in enumerate(lines) if row.startswith("title:"))
    lines.insert(title + 1, "title: Another title")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    twice = f"geha.yaml:{title + 2}: not valid YAML: 'title' is given twice (first on line {title + 1})"
    assert str(caught.value) == twice


def test_a_name_given_twice_in_the_order_codes_is_refused(tmp_path: Path) -> None:
    """The order codes are read as every policy file is: the later of two names no longer wins."""
    root = copy_policies(tmp_path)
    path = root / "order-codes.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace('  "62320": trial', '  "62320": first name\n  "62320": trial', 1), encoding="utf-8"
    )
    with pytest.raises(ValueError, match=r"order-codes.yaml:\d+: not valid YAML: '62320' is given twice"):
        load_catalog(root)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            '{code: "62322"',
            '{kode: "62322"',
            r"trial_first\.0\.kode: Additional properties are not allowed \('kode' was unexpected\)",
        ),
        (
            '    cpt: ["62355", "62365"]',
            '    cpt: "62355"',
            r"kinds\.removal\.cpt: '62355' is not of type 'array'",
        ),
        (
            '    cpt: ["62355", "62365"]',
            "    cpt: [62355]",
            r"kinds\.removal\.cpt\.0: 62355 is not of type 'string'",
        ),
        (
            '    cpt: ["62355", "62365"]',
            '    icd: ["62355"]',
            r"kinds\.removal\.icd: Additional properties are not allowed",
        ),
        ("  removal:\n", "  explant:\n", r"'explant' is not a request kind of vocabulary\.yaml"),
        (
            '    cpt: ["62355", "62365"]',
            '    cpt: ["62355", "62350"]',
            r"code 62350 is listed under two kinds",
        ),
        (
            '  "62365": pump removal',
            '  "62366": pump removal',
            r"a name is given for 62366, which is not an order",
        ),
        ("  J0475: baclofen  #", "  J3490: baclofen  #", r"a drug is given for J3490"),
        ("  J0475: baclofen  #", "  J0475: baclophen  #", r"J0475 names baclophen, no ingredient"),
    ],
    ids=[
        "misspelt-key",
        "code-not-in-a-list",
        "code-not-a-string",
        "unknown-system",
        "unknown-kind",
        "twice",
        "name",
        "drug-not-an-order-code",
        "drug-unknown",
    ],
)
def test_a_broken_order_code_table_stops_start_up_naming_the_line_and_element(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    """As every other table: the file, the line and what is wrong. Before, a misspelt key stopped
    start-up with a bare KeyError('code'), and a code not in a list was read letter by letter."""
    root = copy_policies(tmp_path)
    path = root / "order-codes.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(OrderCodesError, match=rf"^order-codes\.yaml:\d+: .*{message}"):
        load_catalog(root)


@pytest.mark.parametrize("fast", [True, False])
def test_keys_are_repeated_when_the_reader_takes_them_for_one(fast: bool) -> None:
    """`true` and `True` are one key; `1` and `'1'` are two; a merge key's values may be overridden,
    however deep the merged mapping is (PyYAML merges into the node itself)."""
    loader = strict_loader(fast)
    with pytest.raises(yaml.YAMLError, match="'True' is given twice"):
        yaml.load("true: a\nTrue: b\n", Loader=loader)
    assert yaml.load("1: a\n'1': b\n", Loader=loader) == {1: "a", "1": "b"}
    merged = "outer:\n  inner: &i {a: 1, c: 2}\nm:\n  n:\n    <<: *i\n    a: 2\nk:\n  <<: *i\n"
    assert yaml.load(merged, Loader=loader)["m"] == {"n": {"a": 2, "c": 2}}


def test_a_broken_policy_reads_the_same_with_and_without_the_catalog_cache(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    mutate_geha(root, lambda raw: raw["criteria"][0]["test"].update(months="six"))
    messages = []
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):
        with pytest.raises(PolicyError) as caught:
            cached_catalog(root, cache)
        messages.append(str(caught.value))
    assert len(set(messages)) == 1 and re.match(r"geha\.yaml:\d+: criteria\.0\.test", messages[0]), messages
    assert not list((tmp_path / "cache").glob("*.catalog"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('effective: "2021-01-01"', 'effective: "2021-13-01"'),
        ('effective: "2021-01-01"', 'effective: "2021-02-30"'),
        ('next_review: "2022-01-01"', 'next_review: "2022-02-29"'),
    ],
)
def test_an_impossible_date_names_file_line_and_element(tmp_path: Path, old: str, new: str) -> None:
    """The schema takes any digits in the date's shape; the calendar is checked with a location, not
    left to stop start-up with a traceback (payer review P-1)."""
    root = copy_policies(tmp_path)
    line = replace_once(root / "geha.yaml", old, new)
    key, value = new.split(": ")
    with pytest.raises(
        PolicyError, match=rf"^geha\.yaml:{line}: {key}: '{value.strip(chr(34))}' is not a date: "
    ):
        load_catalog(root)


@pytest.mark.parametrize(
    ("file", "old", "new", "element"),
    [
        ("payers.yaml", "name: Cohere Health", "name: Soci\udce9t\udce9 Mutuelle", "payers.3.name"),
        ("geha.yaml", "payer: GEHA", "payer: GEHA Soci\udce9t\udce9", "payer"),
        ("order-codes.yaml", "  J0475: baclofen  #", "  J0475: baclof\udce8ne  #", "drugs.J0475"),
        ("valuesets/physical-therapy.yaml", "title: ", "title: Kin\udce9 ", "title"),
        ("sources/000_77fb8b59100a0397.txt", "Origination Date", "Origination D\udce9te", "(text)"),
    ],
)
def test_a_byte_that_is_not_utf8_names_file_line_and_element(
    tmp_path: Path, file: str, old: str, new: str, element: str
) -> None:
    """A Latin-1 byte, as a Windows editor saves "é", in any file the catalog reads (payer review P-1)."""
    root = copy_policies(tmp_path)
    path = root / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_bytes(text.replace(old, new, 1).encode("utf-8", errors="surrogateescape"))
    line = text[: text.index(old)].count("\n") + 1
    name = file  # from the policies folder: `valuesets/physical-therapy.yaml` (review s16 OPS-7)
    with pytest.raises(SourceError) as caught:
        load_catalog(root)
    assert str(caught.value).startswith(f"{name}:{line}: {element}: byte 0x"), str(caught.value)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda text: text + "\n: : :\n", r"valuesets/pain-cause\.yaml:\d+: not valid YAML: "),
        (lambda text: text + "\nunexpected: 1\n", r"valuesets/pain-cause\.yaml:\d+: "),
        (lambda text: text.replace("title:", "titel:", 1), r"valuesets/pain-cause\.yaml"),
    ],
    ids=["not-yaml", "schema", "compiled"],
)
def test_a_broken_value_set_is_named_from_the_policies_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: Callable[[str], str], message: str
) -> None:
    """As every other file of the folder is named (review s16 OPS-7: it was `pain-cause.yaml:28`)."""
    from service.cli import main

    root = copy_policies(tmp_path)
    path = root / "valuesets" / "pain-cause.yaml"
    path.write_text(breakage(path.read_text(encoding="utf-8")), encoding="utf-8")
    assert main(["policies", "check", str(root)]) == 1
    error = capsys.readouterr().err
    assert re.match(rf"idds-crd policies check: {message}", error), error


@pytest.mark.parametrize("breakage", ["missing", "folder", "dangling-link"])
def test_a_file_that_cannot_be_read_is_named(tmp_path: Path, breakage: str) -> None:
    root = copy_policies(tmp_path)
    path = root / "payers.yaml"
    path.unlink()
    if breakage == "folder":
        path.mkdir()
    elif breakage == "dangling-link":
        path.symlink_to(tmp_path / "nowhere.yaml")
    for cache in (None, tmp_path / "cache"):  # the cache reads every file first
        with pytest.raises(SourceError, match=r"payers\.yaml: cannot be read: "):
            cached_catalog(root, cache)


@pytest.mark.parametrize(
    ("old", "new", "claimed", "owner", "owner_line"),
    [
        (
            "value: cbc}",
            "value: geha}",
            r"identifiers\.0: identifier http://idds-crd\.org/fhir/sid/payer-id\|geha",
            "geha",
            "value: geha}",
        ),
        (
            "names: [Cohere Health, Cohere]",
            "names: [Cohere Health, KAISER-permanente]",
            r"names\.1: name 'KAISER-permanente'",
            "kpwa",
            "names: [Kaiser Permanente Washington",
        ),
        (
            "name: Cohere Health",
            "name: GOVERNMENT-employees health  association",
            r"name: name 'GOVERNMENT-employees health  association'",
            "geha",
            "names: [GEHA, Government Employees Health Association]",
        ),
    ],
    ids=["identifier", "name-written-otherwise", "name-as-routing-reads-it"],
)
def test_an_identifier_or_name_two_payers_claim_is_refused_naming_both_lines(
    tmp_path: Path, old: str, new: str, claimed: str, owner: str, owner_line: str
) -> None:
    """Routing takes the first payer that matches: a second claim would send one payer's members to
    another's policy, or never be matched (payer review P-2). Names compare as routing reads them."""
    root = copy_policies(tmp_path)
    path = root / "payers.yaml"
    line = replace_once(path, old, new)
    first = line_of(path, owner_line)
    with pytest.raises(RoutingError) as caught:
        load_catalog(root)
    expected = (
        rf"payers\.yaml:{line}: payers\.\d\.{claimed} is already used by payer '{owner}' \(line {first}\)"
    )
    assert re.fullmatch(expected, str(caught.value)), str(caught.value)


@pytest.mark.parametrize(
    ("old", "new", "element"),
    [
        (
            'cpt: ["62360", "62361", "62362"]',
            'cpt: ["62360", "62361", "6236X"]',
            "kinds.permanent-implant.cpt.2",
        ),
        ('cpt: ["62350", "62351"]', 'cpt: ["62350", "E0783"]', "kinds.catheter.cpt.1"),
        ("hcpcs: [E0785, E0786]", 'hcpcs: [E0785, "62399"]', "kinds.replacement.hcpcs.1"),
        ("hcpcs: [E0785, E0786]", "hcpcs: [E0785, Z9999]", "kinds.replacement.hcpcs.1"),
        ('{code: "62322"', '{code: "C2626"', "trial_first.0.code"),
    ],
)
def test_a_malformed_order_code_is_refused_at_its_own_line(
    tmp_path: Path, old: str, new: str, element: str
) -> None:
    """CPT and HCPCS codes are checked by the value sets' patterns (payer review P-4): a typo is named
    where it is, not by the `names:` entry it leaves without a code."""
    root = copy_policies(tmp_path)
    line = replace_once(root / "order-codes.yaml", old, new)
    with pytest.raises(OrderCodesError, match=rf"^order-codes\.yaml:{line}: {re.escape(element)}: '"):
        load_catalog(root)


def test_the_order_codes_take_their_code_patterns_from_the_value_set_schema() -> None:
    """One definition of a CPT and a HCPCS code, not a copy that can drift (payer review P-4)."""
    schema = (policies.directory() / "schema" / "order-codes.schema.json").read_text(encoding="utf-8")
    assert "[0-9]{4}" not in schema and "[A-Va-v]" not in schema, schema
    assert "valueset.schema.json#/$defs/cpt" in schema and "valueset.schema.json#/$defs/hcpcs" in schema


@pytest.mark.parametrize(
    ("file", "old", "new", "element"),
    [
        (
            "cmm210.yaml",
            "(i.e., an objective basis for the pain complaint)",
            "(an objective basis for the pain complaint)",
            r"criteria\.0\.text \(cmm210\.pain\.trial\.pathology\): its text is not in sources/",
        ),
        (
            "geha.yaml",
            "dates_as_stated:",
            'retired: "2026-12-31"\ndates_as_stated:',
            r"retired: Additional properties are not allowed",
        ),
    ],
    ids=["quote-not-in-source", "unexpected-key"],
)
def test_an_error_is_reported_at_the_line_of_the_element_at_fault(
    tmp_path: Path, file: str, old: str, new: str, element: str
) -> None:
    """Not at the policy's `id:` or the mapping holding an unexpected key (payer review P-6)."""
    root = copy_policies(tmp_path)
    line = replace_once(root / file, old, new)
    with pytest.raises(PolicyError, match=rf"^{re.escape(file)}:{line}: {element}"):
        load_catalog(root)


def test_a_value_set_id_defined_twice_names_both_files(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    folder = root / "valuesets"
    (folder / "physical-therapy-copy.yaml").write_bytes((folder / "physical-therapy.yaml").read_bytes())
    with pytest.raises(ValueSetError) as caught:
        load_catalog(root)
    assert str(caught.value) == (
        "valuesets/physical-therapy.yaml:1: id: value set id 'physical-therapy' is already used "
        "(valuesets/physical-therapy-copy.yaml:1)"
    )


def test_a_policy_id_used_twice_names_the_other_file(tmp_path: Path) -> None:
    root = copy_policies(tmp_path)
    (root / "cmm210-v2.yaml").write_bytes((root / "cmm210.yaml").read_bytes())
    line = line_of(root / "cmm210.yaml", "id: cmm-210-idds")
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    assert str(caught.value) == (
        f"cmm210.yaml:{line}: id: policy id 'cmm-210-idds' is already used (cmm210-v2.yaml:{line})"
    )


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "cmm210.yaml",
            'effective: "2019-08-01"',
            'effective: "2031-05-05"',
            "effective: 2031-05-05 is not what dates_as_stated states: "
            "'Effective August 1, 2019' (2019-08-01)",
        ),
        (
            "cbc.yaml",
            'effective: "2025-07-01"',
            'effective: "2025-01-07"',
            "effective: 2025-01-07 is not what dates_as_stated states: "
            "'Effective Date: 7/1/2025' (2025-07-01)",
        ),
        (
            "geha.yaml",
            'next_review: "2022-01-01"',
            'next_review: "2022-01-15"',
            "next_review: 2022-01-15 is not what dates_as_stated states: "
            "'Next Review Date: Jan 2022' (2022-01-01)",
        ),
        (
            "geha.yaml",
            'next_review: "2022-01-01"',
            "next_review: null",
            "next_review: null is not what dates_as_stated states: 'Next Review Date: Jan 2022' (2022-01-01)",
        ),
        (
            "ncd-280-14.yaml",
            "NCD effective December 17, 2004",
            "NCD effective December 18, 2004",
            "effective: 2004-12-17 is not what version states: 'effective December 18, 2004' (2004-12-18)",
        ),
        (
            "cmm210.yaml",
            "next_review: null",
            'next_review: "2001-01-01"',
            "next_review: 2001-01-01 is before effective 2019-08-01",
        ),
    ],
    ids=["month-name", "month-day-year", "month-only", "null", "version-label", "review-before-effective"],
)
def test_the_iso_dates_agree_with_the_dates_the_words_state(
    tmp_path: Path, file: str, old: str, new: str, message: str
) -> None:
    """The card shows the document's words, the policy page the ISO date: they must not disagree
    (payer review P-7), and a review cannot come before the text it reviews."""
    root = copy_policies(tmp_path)
    replace_once(root / file, old, new)
    key = message.split(":")[0]
    line = line_of(root / file, f"{key}:")
    with pytest.raises(PolicyError) as caught:
        load_catalog(root)
    assert str(caught.value) == f"{file}:{line}: {message}"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('effective: "2021-01-01"', 'effective: "2021-02-30"'),
            r"geha\.yaml:\d+: effective: '2021-02-30' is not",
        ),
        (
            ('effective: "2021-01-01"', "effective: 2021-02-30"),
            r"geha\.yaml:\d+: effective: '2021-02-30' is not a date: day is out of range for month$",
        ),
        (
            ("name: Cohere Health", "name: Soci\udce9t\udce9"),
            r"payers\.yaml:\d+: payers\.3\.name: byte 0xe9 is not",
        ),
        (
            ("name: Cohere Health", "name: 2024-13-01"),
            r"payers\.yaml:\d+: payers\.3\.name: '2024-13-01' is not a date: month must be in 1\.\.12$",
        ),
        (
            ("value: cbc}", "value: geha}"),
            r"payers\.yaml:\d+: payers\.2\.identifiers\.0: identifier .*\|geha is",
        ),
    ],
    ids=[
        "impossible-date",
        "impossible-date-unquoted",
        "not-utf8",
        "payer-unquoted-impossible-date",
        "payer-identifier-twice",
    ],
)
def test_policies_check_reports_a_broken_file_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: tuple[str, str], message: str
) -> None:
    from service.cli import main

    root = copy_policies(tmp_path)
    file = "geha.yaml" if "effective" in edit[0] else "payers.yaml"
    text = (root / file).read_text(encoding="utf-8").replace(*edit, 1)
    (root / file).write_bytes(text.encode("utf-8", errors="surrogateescape"))
    assert main(["policies", "check", str(root)]) == 1
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1 and re.match(rf"idds-crd policies check: {message}", error), error


def test_a_payers_card_name_begins_with_a_name_the_routing_knows_it_by() -> None:
    """cards24 LOW 1: "Request prior authorization from CMM-210 (eviCore)": CMM-210 is the guideline's id
    (seed 004: "CLINICAL GUIDELINES / CMM-210: Implantable Intrathecal Drug Delivery Systems"), not the payer
    a clinician asks. A payer's `name`, which every card shows, begins with one of the names its Organization
    is routed by (`names`); a guideline id may follow it."""
    for payer in load_catalog().payers:
        assert any(payer.name.lower().startswith(name.lower()) for name in payer.names), payer.name


def test_a_policy_line_on_a_payers_cards_names_no_other_payer() -> None:
    """cards24 LOW 2: Kaiser's Medicare cards read "NCD effective December 17, 2004, as summarised in the GEHA
    policy (origination Jan 2021)": a Kaiser reviewer saw another payer's policy given as the source. The
    title and version every card's policy line shows (cards/render.py), and the reasons a card gives for an
    indication the policy does not address, name no payer but the one whose cards they are on; where the text
    was taken from is the policy's `document` and `source`, shown on its page."""
    catalog = load_catalog()
    for payer in catalog.payers:
        others = {n for p in catalog.payers if p.key != payer.key for n in p.names} - set(payer.names)
        for chain in filter(None, (payer.policies, payer.medicare_policies)):
            for _, policy_id in chain.members:
                policy = catalog.policies[policy_id]
                line = " ".join([policy.title, policy.version, *policy.not_addressed.values()]).lower()
                named = [n for n in others if re.search(rf"\b{re.escape(n.lower())}\b", line)]
                assert not named, (payer.key, policy_id, line, named)


def test_no_criterion_label_is_a_double_negative() -> None:
    """cards24 LOW 7: Cohere's "Not non-specific, generalized body pain" (seed 003's non-indication
    "Non-specific, generalized body pain" behind the exclusion's "Not"): a card's ❌ or ✅ line read two
    negations in a row. An exclusion's label negates the seed's words once."""
    for policy in load_catalog().policies.values():
        for criterion in policy.all_criteria():
            assert not re.match(r"(?i)(?:no|not)\s+non\b", criterion.label), (policy.id, criterion.label)
