"""Policy files (`policies/*.yaml`) compiled once at start-up into immutable Policy values.

A policy is data: its identity and citation, the indications and request kinds it addresses,
and a tree of criteria whose leaves name a test type from `service.engine.checks` (or, for a
fact documented in several forms, a list of such tests: `forms`, see `service.engine.forms`). The
compiler checks every key, every test parameter and every value-set reference, so a broken
policy stops start-up with the file and the reason instead of misjudging a patient later.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

from service.engine.checks import TEST_TYPES
from service.stated_dates import stated_dates
from service.succession import check_supersedes
from service.terminology import Terminology
from service.vocabulary import Vocabulary
from service.wording import aside
from service.yamlsource import Located, Path_, SourceError, check_schema, element, load, read_text

_FINDING_PARAMS = ("missing", "found_finding")  # test parameters a card shows as the finding


class PolicyError(SourceError):
    """A policy file is invalid; the message names the file, the line, the criterion and the reason."""


@dataclass(frozen=True)
class TestSpec:
    """One test of a leaf criterion: a registered test type and its checked parameters."""

    __test__ = False  # not a pytest test class, whatever its name

    type: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class CriterionSpec:
    id: str
    label: str
    text: str
    section: str
    role: str
    kinds: frozenset[str] | None
    test_type: str | None = None
    indications: frozenset[str] | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    logic: str | None = None
    children: tuple[CriterionSpec, ...] = ()
    reading: str | None = None
    how_to_document: str | None = None
    forms: tuple[TestSpec, ...] = ()
    either_on_one_date: bool = False  # forms whose bars differ: on one date "met" decides (engine.forms)
    gate: bool = False  # says whether its group applies at all (see CriterionResult.gate)
    trial_result: bool = False  # asks what the preliminary trial showed: a trial ordered now answers it
    before_trial: bool = False  # asked before the preliminary trial (the Instructions card says it first)

    @property
    def tests(self) -> tuple[TestSpec, ...]:
        """The tests of a leaf: its evidence forms, or its one test (none for an all/any group)."""
        if self.forms:
            return self.forms
        return (TestSpec(self.test_type, self.params),) if self.test_type is not None else ()

    def walk(self) -> list[CriterionSpec]:
        """This criterion and every criterion below it."""
        return [self, *(c for child in self.children for c in child.walk())]


@dataclass(frozen=True)
class Currency:
    """When the policy's text took effect and when its publisher said it would next review it, in the
    document's own words (`stated`) and as dates (a month-precise date is the first of the month)."""

    effective: date
    next_review: date | None
    stated: str

    def overdue(self, today: date) -> date | None:
        """The next-review date when it has passed by `today`; None while current or when none is stated."""
        return self.next_review if self.next_review is not None and self.next_review <= today else None


@dataclass(frozen=True)
class Policy:
    id: str
    payer: str
    title: str
    version: str
    document: str
    source: str
    currency: Currency
    url: str | None
    indications: frozenset[str]
    request_kinds: frozenset[str]
    not_addressed: Mapping[str, str]
    criteria: tuple[CriterionSpec, ...]
    vocabulary: Vocabulary = field(compare=False, repr=False)  # the words its scope is written in
    supersedes: str | None = None  # the version it replaces from its effective date (service/succession.py)

    def citation(self, section: str) -> str:
        """Where a criterion is in the policy (the audit record): its version set apart as the cards set it
        (`aside`: "[Version 2, last updated 3/29/2024 (original 9/14/2023)]", never one aside in another)."""
        return f"{self.payer}, {self.title} {aside(self.version)}, {section}"

    def all_criteria(self) -> list[CriterionSpec]:
        return [c for top in self.criteria for c in top.walk()]

    @cached_property
    def ids_by_test_type(self) -> Mapping[str, frozenset[str]]:
        """Criterion ids per test type, worked out once per policy (not per hook call)."""
        found: dict[str, set[str]] = {}
        for c in self.all_criteria():
            for test in c.tests:
                found.setdefault(test.type, set()).add(c.id)
        return {test_type: frozenset(ids) for test_type, ids in found.items()}

    @cached_property
    def trial_answers(self) -> frozenset[str]:
        """The ids of the criteria a trial answers: those marked `trial_result` and every criterion below
        one (service/next_steps.py proposes the trial only when these are all that is not met)."""
        return frozenset(c.id for top in self.all_criteria() if top.trial_result for c in top.walk())

    @cached_property
    def before_trial(self) -> frozenset[str]:
        """The ids of the criteria the policy asks before the trial (`before_trial`): while no trial is
        begun, the Instructions card puts them before the trial's step (cards/response.py)."""
        return frozenset(c.id for c in self.all_criteria() if c.before_trial)

    @cached_property
    def worded_value_sets(self) -> frozenset[str]:
        """The value sets its tests read a diagnosis's words against (`TestType.words_read`)."""
        return frozenset(
            vs
            for c in self.all_criteria()
            for test in c.tests
            for vs in TEST_TYPES[test.type].words_read(test.params)
        )

    @cached_property
    def reads_order_reason(self) -> bool:
        """Whether a test of its criteria reads the order's reason (`order_reason`): only then do its
        criteria results differ between orders of one kind and indication (engine/evaluate.py's memo)."""
        return any(test.params.get("order_reason") for c in self.all_criteria() for test in c.tests)


def _words(text: str) -> str:
    return " ".join(text.split())


UNSHIPPED_REFERENCE = re.compile(r"\bAMB-\d+")  # criteria-and-codes.md's ambiguity ids: not shipped
_PLACEHOLDER = re.compile(r"\{assessment:([^}]*)\}")


class CardWords:
    """The words of a policy that a clinician reads (labels, steps, findings, notes), compiled once:
    `{assessment:CODE}` becomes the code's display, a bare assessment code (with its "the … assessment"
    around it) becomes its display in quotes - the name of the item on the documentation form - and an
    unknown code or a reference to a document the project does not ship stops start-up."""

    def __init__(self, displays: Mapping[str, str]) -> None:
        self.displays = displays
        codes = "|".join(re.escape(c) for c in sorted(displays, key=len, reverse=True))
        one = rf"(?<![\w{{:-])(?:the )?({codes})(?: assessment)?(?![\w}}-])"
        self.pair = re.compile(rf"(?<![\w{{:-])(?:the )?({codes}) and ({codes}) assessments(?![\w-])")
        self.code = re.compile(one) if displays else None

    def __call__(self, text: str, where: str, card: bool = True) -> str:
        """`text` in a clinician's words; `card` False (a reviewer's reading) keeps bare codes."""
        if found := UNSHIPPED_REFERENCE.search(text):
            raise PolicyError(
                f"{where}: '{found.group(0)}' names a document the project does not ship; say it in words "
                "or cite the policy section (keep the id in a YAML comment)"
            )
        unknown = [c for c in _PLACEHOLDER.findall(text) if c not in self.displays]
        if unknown:
            raise PolicyError(f"{where}: '{{assessment:{unknown[0]}}}' is not an assessment code")
        if card and self.code is not None:
            text = self.pair.sub(lambda m: f"“{self.displays[m[1]]}” and “{self.displays[m[2]]}”", text)
            text = self.code.sub(lambda m: f"“{self.displays[m[1]]}”", text)
        return _PLACEHOLDER.sub(lambda m: self.displays[m[1]], _words(text))


def _check_test(test: Mapping[str, Any], where: str, terminology: Terminology) -> dict[str, Any]:
    test_type = TEST_TYPES.get(test["type"])
    if test_type is None:
        raise PolicyError(
            f"{where}: unknown test type '{test['type']}'; known: {', '.join(sorted(TEST_TYPES))}"
        )
    params = {k: v for k, v in test.items() if k != "type"}
    if problem := test_type.problem(params, terminology):
        raise PolicyError(f"{where}{problem}")
    return params


class _Compiler:
    """Turns one schema-valid policy document into a Policy, checking what the schema cannot."""

    def __init__(self, source: Located, terminology: Terminology, vocabulary: Vocabulary) -> None:
        self.source = source
        self.terminology = terminology
        self.vocabulary = vocabulary
        self.paths: dict[str, Path_] = {}  # where each criterion is, by id
        self.card_words = CardWords(terminology.assessment_codes)

    def words(
        self, raw: Mapping[str, Any], key: str, what: str, path: tuple[str | int, ...]
    ) -> frozenset[str] | None:
        """The ids under `key` (None when absent), each of which must be one of the vocabulary's `what`."""
        if key not in raw:
            return None
        for i, word in enumerate(raw[key]):
            if self.vocabulary.unknown([word], what):
                known = ", ".join(getattr(self.vocabulary, what))
                where = self.where((*path, key, i))
                raise PolicyError(f"{where}: '{word}' is not one of {known} (vocabulary.yaml)")
        return frozenset(raw[key])

    def where(self, path: tuple[str | int, ...], criterion_id: str | None = None) -> str:
        return f"{self.source.at(path)}: {element(path)}" + (f" ({criterion_id})" if criterion_id else "")

    def test(self, raw: Mapping[str, Any], path: tuple[str | int, ...], criterion_id: str) -> dict[str, Any]:
        params = _check_test(raw, self.where(path, criterion_id), self.terminology)
        for name in _FINDING_PARAMS:
            if name in params:
                params[name] = self.card_words(params[name], self.where((*path, name), criterion_id))
        return params

    def text(
        self, raw: Mapping[str, Any], key: str, path: tuple[str | int, ...], card: bool = True
    ) -> str | None:
        """A criterion's `key` text in a clinician's words (see CardWords), None when absent."""
        if key not in raw:
            return None
        return self.card_words(raw[key], self.where((*path, key), raw.get("id")), card)

    def scope(
        self, raw: Mapping[str, Any], path: tuple[str | int, ...], parent: frozenset[str]
    ) -> frozenset[str]:
        """The indications a criterion applies to: its own `indications`, which a sub-criterion may
        only narrow, else its parent's (the policy's scope for a top-level criterion)."""
        own = self.words(raw, "indications", "indications", path)
        if own is None:
            return parent
        if not own <= parent:
            outside = ", ".join(sorted(own - parent))
            raise PolicyError(
                f"{self.where(path, raw['id'])}: 'indications' {outside} not among the indications it is "
                f"nested in ({', '.join(sorted(parent))})"
            )
        return own

    def branches(self, raw: Mapping[str, Any], path: tuple[str | int, ...], scope: frozenset[str]) -> None:
        """Every indication a group applies to keeps at least one of its sub-criteria."""
        children = raw.get("all") or raw.get("any") or ()
        for indication in sorted(scope):
            if not any(indication in c.get("indications", (indication,)) for c in children):
                raise PolicyError(
                    f"{self.where(path, raw['id'])}: no sub-criterion applies to {indication}; give the "
                    "group itself 'indications'"
                )

    def criterion(
        self,
        raw: Mapping[str, Any],
        path: tuple[str | int, ...],
        parent_role: str | None,
        parent_scope: frozenset[str],
    ) -> CriterionSpec:
        cid = raw["id"]
        if cid in self.paths:
            first = self.source.line(self.paths[cid])
            raise PolicyError(f"{self.where(path, cid)}: criterion id used twice (first on line {first})")
        self.paths[cid] = path
        role = raw.get("role", parent_role)
        if role is None:
            raise PolicyError(f"{self.where(path, cid)}: a top-level criterion needs a role")
        if "kinds" in raw and parent_role is not None:
            raise PolicyError(
                f"{self.where(path, cid)}: 'kinds' belongs on the top-level criterion, not inside all/any"
            )
        scope = self.scope(raw, path, parent_scope)
        common: dict[str, Any] = {
            "id": cid,
            "label": self.text(raw, "label", path) or cid,
            "text": _words(raw["text"]),
            "section": _words(raw["section"]),
            "role": role,
            "kinds": self.words(raw, "kinds", "request_kinds", path),
            "indications": self.words(raw, "indications", "indications", path),
            "reading": self.text(raw, "reading", path, card=False),
            "how_to_document": self.text(raw, "how_to_document", path),
            "gate": raw.get("gate", False),
            "trial_result": raw.get("trial_result", False),
            "before_trial": raw.get("before_trial", False),
        }
        if "test" in raw:
            params = self.test(raw["test"], (*path, "test"), cid)
            return CriterionSpec(**common, test_type=raw["test"]["type"], params=params)
        if "forms" in raw:
            forms = tuple(
                TestSpec(form["type"], self.test(form, (*path, "forms", i), cid))
                for i, form in enumerate(raw["forms"])
            )
            return CriterionSpec(**common, forms=forms, either_on_one_date=raw.get("same_day") == "either")
        self.branches(raw, path, scope)
        logic = "all" if "all" in raw else "any"
        children = tuple(
            self.criterion(child, (*path, logic, i), role, scope) for i, child in enumerate(raw[logic])
        )
        return CriterionSpec(**common, logic=logic, children=children)

    def policy(self) -> Policy:
        raw = self.source.data
        scope = raw["scope"]
        indications = self.words(scope, "indications", "indications", ("scope",)) or frozenset()
        criteria = tuple(
            self.criterion(c, ("criteria", i), None, indications) for i, c in enumerate(raw["criteria"])
        )
        return Policy(
            id=raw["id"],
            payer=_words(raw["payer"]),
            title=_words(raw["title"]),
            version=_words(raw["version"]),
            document=_words(raw["document"]),
            source=raw["source"],
            currency=self.currency(raw),
            url=raw.get("url"),
            indications=indications,
            request_kinds=self.words(scope, "request_kinds", "request_kinds", ("scope",)) or frozenset(),
            not_addressed=self.not_addressed(scope.get("not_addressed") or {}),
            criteria=criteria,
            vocabulary=self.vocabulary,
            supersedes=raw.get("supersedes"),
        )

    def iso_date(self, raw: Mapping[str, Any], key: str) -> date | None:
        """The ISO date under `key` (None for null); the schema has its form, this its calendar."""
        if raw[key] is None:
            return None
        try:
            return date.fromisoformat(raw[key])
        except ValueError as exc:
            raise PolicyError(f"{self.where((key,))}: '{raw[key]}' is not a date: {exc}") from None

    def currency(self, raw: Mapping[str, Any]) -> Currency:
        """The policy's dates, which must be in order and agree with every date its words state
        (`dates_as_stated` and the `version` label a card shows: see service/stated_dates.py)."""
        dates = {key: self.iso_date(raw, key) for key in ("effective", "next_review")}
        effective, next_review = dates["effective"], dates["next_review"]
        assert effective is not None  # the schema requires a string
        if next_review is not None and next_review < effective:
            raise PolicyError(
                f"{self.where(('next_review',))}: {next_review} is before effective {effective}"
            )
        for words in ("dates_as_stated", "version"):
            for stated in stated_dates(_words(raw[words])):
                if stated.day != dates[stated.key]:
                    said = "no real day" if stated.day is None else stated.day.isoformat()
                    given = raw[stated.key] or "null"
                    raise PolicyError(
                        f"{self.where((stated.key,))}: {given} is not what {words} states: "
                        f"'{stated.words}' ({said})"
                    )
        return Currency(effective, next_review, _words(raw["dates_as_stated"]))

    def quotes(self, policy: Policy, sources: Path) -> None:
        """Every criterion's `text` and the policy's `dates_as_stated` are its source document's own
        words (whitespace aside), from the copy shipped in `sources` (the policy page shows it): a
        reviewer must find each cited sentence in the policy it is cited from."""
        document = sources / Path(policy.source).name
        if not document.is_file():
            raise PolicyError(f"{self.where(('source',))}: {SOURCES}/{document.name} is not there")
        words = _words(read_text(document, f"{SOURCES}/{document.name}"))
        quoted = [((*self.paths[spec.id], "text"), spec.id, spec.text) for spec in policy.all_criteria()]
        for path, cid, text in [*quoted, (("dates_as_stated",), None, policy.currency.stated)]:
            if _words(text) not in words:
                raise PolicyError(f"{self.where(path, cid)}: its text is not in {SOURCES}/{document.name}")

    def not_addressed(self, raw: Mapping[str, str]) -> dict[str, str]:
        """Why the policy gives no criteria, per indication or request kind it leaves out."""
        for key in raw:
            vocabulary = self.vocabulary
            if vocabulary.unknown([key], "indications") and vocabulary.unknown([key], "request_kinds"):
                where = self.where(("scope", "not_addressed", key))
                raise PolicyError(f"{where}: '{key}' is no indication or request kind of vocabulary.yaml")
        return {k: self.card_words(v, self.where(("scope", "not_addressed", k))) for k, v in raw.items()}


def compile_policy(
    source: Located, terminology: Terminology, vocabulary: Vocabulary, sources: Path | None = None
) -> Policy:
    """Check a parsed policy file against the schema, the registry and the vocabulary, and compile it;
    given the folder of the `sources`, check its quotes against its source document there too."""
    try:
        check_schema(source, "policy.schema.json")
    except SourceError as exc:
        raise PolicyError(str(exc)) from None
    compiler = _Compiler(source, terminology, vocabulary)
    policy = compiler.policy()
    if sources is not None:
        compiler.quotes(policy, sources)
    return policy


def load_policies(
    directory: Path, terminology: Terminology, vocabulary: Vocabulary, tables: Iterable[str]
) -> dict[str, Policy]:
    """Compile every `*.yaml` file in `directory` as a policy, but the other tables named in `tables`."""
    compiled: dict[str, Policy] = {}
    files: dict[str, Located] = {}  # each policy's parsed file, by policy id
    for path in sorted(directory.glob("*.yaml")):
        if path.name in tables:
            continue
        try:
            source = load(path)
        except SourceError as exc:
            raise PolicyError(str(exc)) from None
        policy = compile_policy(source, terminology, vocabulary, directory / SOURCES)
        if policy.id in compiled:
            raise PolicyError(
                f"{source.at(('id',))}: id: policy id '{policy.id}' is already used "
                f"({files[policy.id].at(('id',))})"
            )
        compiled[policy.id] = policy
        files[policy.id] = source
    check_supersedes(compiled, files)
    return compiled


SOURCES = "sources"  # beside the policies: each policy's source document, as its `source` names it
