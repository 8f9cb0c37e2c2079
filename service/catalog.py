"""The compiled knowledge the service runs on: value sets, order codes, policies and payer routing.

Built once when the application is created (never per request) and shared read-only by all
requests; a broken file raises here, so the service refuses to start on a broken policy. A worker
takes the compiled catalog from a private on-disk cache when its files have not changed
(service/catalog_cache.py), so starting another worker costs milliseconds, not a compilation.

The policy directory is the one shipped inside the package unless the operator names their own
(the `policies` setting, `idds-crd policies check DIR`): a folder outside the package can be edited,
mounted into a container or kept under the operator's own version control without reinstalling.
Its files are checked against the installed schemas, never a copy in the folder: the schemas say
what this version of the compiler reads, so a folder's own (older, or loosened) copy would pass
files that the service then misreads or cannot compile.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, partial
from pathlib import Path

import policies
from service import catalog_cache
from service.assessments import AssessmentCodesError, AssessmentCodeSystem, load_assessment_codes
from service.call_day import call_date
from service.codes import ASSESSMENT_SYSTEM
from service.engine.classify import CLASSIFICATION_VALUE_SETS, INDICATIONS_CLASSIFIED, KINDS_NAMED_IN_CODE
from service.orders import OrderCodeTable, load_order_codes
from service.policy import SOURCES, Policy, load_policies
from service.record import RECORD_VALUE_SETS
from service.routing import Payer, load_payers
from service.settings import Settings
from service.succession import Successions
from service.terminology import Terminology, ValueSetError, load_terminology
from service.trial import SCALE_CODES, SCALE_REDUCTION
from service.vocabulary import Vocabulary, VocabularyError, load_vocabulary
from service.yamlsource import SourceError, read_text

ASSESSMENT_CODES = "assessment-codes.yaml"
ORDER_CODES = "order-codes.yaml"
PAYERS = "payers.yaml"
VOCABULARY = "vocabulary.yaml"
TABLES = (ASSESSMENT_CODES, ORDER_CODES, PAYERS, VOCABULARY)  # every other YAML file there is a policy
REQUIRED_VALUE_SETS = (
    *CLASSIFICATION_VALUE_SETS,
    *RECORD_VALUE_SETS,
    "observation-evidence",
)
SCHEMA = "schema"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Catalog:
    terminology: Terminology
    order_codes: OrderCodeTable
    policies: dict[str, Policy]
    payers: tuple[Payer, ...]
    assessments: AssessmentCodeSystem
    vocabulary: Vocabulary
    # which rules judged a call (kept in its audit record): the policy data and the service code that
    # reads it, where the payer's own version label of a policy names only the document
    rules_digest: str
    successions: Successions  # each policy's chain of versions (`supersedes`)
    directory: Path  # the policy directory it was compiled from
    # each policy's source document as it was read when the catalog was compiled, by policy id (the
    # policy page shows it: the text the service judges by, not an edit made since)
    sources: Mapping[str, str] = field(default_factory=dict)

    @cached_property
    def worded_diagnoses(self) -> frozenset[str]:
        """The value sets any of its policies reads a diagnosis's words against (`Policy.worded_value_sets`):
        the record counts a diagnosis carrying a modifier by its words only against these (build_record)."""
        return frozenset(vs for policy in self.policies.values() for vs in policy.worded_value_sets)


class PoliciesFolderError(SourceError):
    """The policy directory asked for is not there."""


def load_catalog(directory: Path | None = None, today: date | None = None) -> Catalog:
    """The catalog of `directory` (default: the shipped policies), through the configured cache;
    `today` as `compile_catalog` takes it."""
    root = (directory or policies.directory()).resolve()
    if not root.is_dir():
        raise PoliciesFolderError(f"{directory}: no such policies folder")
    for ignored in foreign_schemas(root):
        log.warning("%s differs from the installed schema, which is the one used", ignored)
    return cached_catalog(root, catalog_cache.configured_directory(), today)


def configured_catalog(settings: Settings) -> Catalog:
    """The catalog the configuration names (`policies`), checked on the call date of its `timezone`."""
    return load_catalog(settings.policies, call_date(settings.timezone))


def foreign_schemas(root: Path) -> list[Path]:
    """The JSON Schemas in `root/schema` that differ from (or are not) the installed ones: they are not
    used (see the module's docstring)."""
    installed = policies.directory() / SCHEMA
    if root / SCHEMA == installed or not (root / SCHEMA).is_dir():
        return []
    return [
        own
        for own in sorted((root / SCHEMA).glob("*.json"))
        if not (installed / own.name).is_file() or own.read_bytes() != (installed / own.name).read_bytes()
    ]


def cached_catalog(root: Path, cache_directory: Path | None, today: date | None = None) -> Catalog:
    """The catalog of `root`, from `cache_directory` if it holds it (None: no cache), else compiled."""
    day = today or call_date()
    compile_on_day = partial(compile_catalog, today=day)
    if cache_directory is None:
        return compile_on_day(root)
    return catalog_cache.load_or_compile(root, compile_on_day, Catalog, cache_directory, day.isoformat())


def compile_catalog(root: Path, today: date | None = None) -> Catalog:
    """Read, check and compile every file of a policy directory; raises on the first broken one.
    `today` (default: the call date now in UTC, service/call_day.py; the service gives the date in its
    `timezone`) is the day every payer's policy must have a version in force."""
    assessments = load_assessment_codes(root / ASSESSMENT_CODES)
    if assessments.url != ASSESSMENT_SYSTEM:
        raise AssessmentCodesError(f"{ASSESSMENT_CODES}: url must be {ASSESSMENT_SYSTEM} (contract §5)")
    scales = sorted(set(assessments.qualified.get(SCALE_REDUCTION, {}).values()))
    if scales != sorted(SCALE_CODES):
        raise AssessmentCodesError(
            f"{ASSESSMENT_CODES}: {SCALE_REDUCTION}'s scale options must name the scales a trial is "
            f"scored on ({', '.join(SCALE_CODES)}); they name {', '.join(scales) or 'none'}"
        )
    terminology = load_terminology(root / "valuesets", assessments.displays, assessments.qualified)
    missing = [vs for vs in REQUIRED_VALUE_SETS if vs not in terminology]
    if missing:
        raise ValueSetError(f"valuesets: the service needs value set(s) {', '.join(missing)}")
    lacking = terminology.lacking()
    if lacking:
        raise ValueSetError(
            f"valuesets: the clinical data contract's codes are missing: {'; '.join(lacking)}"
        )
    vocabulary = load_vocabulary(root / VOCABULARY)
    undefined = vocabulary.unknown(INDICATIONS_CLASSIFIED, "indications")
    undefined += vocabulary.unknown(KINDS_NAMED_IN_CODE, "request_kinds")
    undefined += vocabulary.unknown(vocabulary.revisions, "request_kinds")
    if undefined:
        raise VocabularyError(
            f"{VOCABULARY}: the service classifies orders by {', '.join(undefined)}, not defined here"
        )
    compiled = load_policies(root, terminology, vocabulary, TABLES)
    successions = Successions.of(compiled)
    payers = load_payers(root / PAYERS, successions, today or call_date())
    order_codes = load_order_codes(root / ORDER_CODES, vocabulary, terminology.ingredient_finder)
    rules = catalog_cache.rules_key(root)[:16]
    return Catalog(
        terminology,
        order_codes,
        compiled,
        payers,
        assessments,
        vocabulary,
        rules,
        successions,
        root,
        source_documents(root, compiled),
    )


def source_documents(root: Path, compiled: Mapping[str, Policy]) -> dict[str, str]:
    """Each policy's source document (`sources/<its source's name>`, which compiling it checked the
    quotes against), by policy id."""
    return {
        policy.id: read_text(
            root / SOURCES / Path(policy.source).name, f"{SOURCES}/{Path(policy.source).name}"
        )
        for policy in compiled.values()
    }
