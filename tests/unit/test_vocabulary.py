"""The indications and request kinds are data (policies/vocabulary.yaml) that every loader checks
and that the engine's words come from."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import policies
from service.catalog import load_catalog
from service.engine.evaluate import evaluate_order
from service.vocabulary import VocabularyError, load_vocabulary
from tests.builders import catalog, context, meeting_chart


def copied(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(policies.directory(), root)
    return root


def test_the_vocabulary_names_every_kind_the_order_codes_and_policies_use() -> None:
    vocabulary = catalog().vocabulary
    assert set(catalog().order_codes.kinds.values()) <= set(vocabulary.request_kinds)
    for policy in catalog().policies.values():
        assert policy.indications <= set(vocabulary.indications)
        assert policy.request_kinds <= set(vocabulary.request_kinds)


def test_the_implant_is_the_principal_order_of_an_episode() -> None:
    vocabulary = catalog().vocabulary
    ranked = sorted(["catheter", "refill-analysis", "permanent-implant", "trial"], key=vocabulary.rank)
    assert ranked == ["permanent-implant", "trial", "catheter", "refill-analysis"]


def test_the_engine_speaks_the_vocabularys_words(tmp_path: Path) -> None:
    root = copied(tmp_path)
    path = root / "vocabulary.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace("a permanent pump implant", "an implanted pump"), "utf-8"
    )
    policy = load_catalog(root).policies["geha-idds-chronic-pain"]
    assert evaluate_order(policy, context(meeting_chart())).explanation == (
        "Every GEHA criterion for an implanted pump is met with evidence."
    )


def test_an_order_code_of_an_unknown_kind_stops_start_up(tmp_path: Path) -> None:
    root = copied(tmp_path)
    path = root / "order-codes.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  catheter:\n", "  tubing:\n"), "utf-8")
    with pytest.raises(ValueError, match=r"'tubing' is not a request kind of vocabulary\.yaml"):
        load_catalog(root)


def test_a_broken_vocabulary_names_the_element(tmp_path: Path) -> None:
    path = tmp_path / "vocabulary.yaml"
    path.write_text("indications:\n  Pain: pain\nrequest_kinds:\n  trial: a trial\n", "utf-8")
    with pytest.raises(VocabularyError, match="indications"):
        load_vocabulary(path)


@pytest.mark.parametrize("word", ["dystonia", "catheter"])
def test_an_id_the_classification_names_stops_start_up_when_renamed_everywhere_else(
    tmp_path: Path, word: str
) -> None:
    """Renamed in every data file, an id the code classifies orders by would match nothing: start-up
    stops and names it instead of judging no order by it."""
    root = copied(tmp_path)
    as_id = re.compile(rf"(?<![\w-]){word}(?![\w-])")
    # its places as an id: a key, or an item of a list of indications or kinds (not a value set's name)
    places = re.compile(rf"^\s*{word}:|^\s*(?:indications|kinds|request_kinds):\s*\[.*$", re.M)
    for path in root.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(places.sub(lambda line: as_id.sub(f"renamed-{word}", line[0]), text), "utf-8")
    with pytest.raises(VocabularyError, match=f"classifies orders by {word}, not defined"):
        load_catalog(root)
