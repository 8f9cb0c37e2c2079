"""The assessment CodeSystem: one data file, the contract's codes exactly, served as FHIR."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.codesystem import CodeSystem

import policies
from service.app import create_app
from service.assessments import AssessmentCodesError, load_assessment_codes
from service.catalog import load_catalog
from service.codes import ASSESSMENT_SYSTEM
from tests.builders import catalog
from tests.catalog_support import copy_policies, edit_yaml
from tests.support import open_settings

CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "spec" / "clinical-data-contract.md"
CODES_FILE = policies.directory() / "assessment-codes.yaml"


def test_the_file_loads_with_the_contract_url() -> None:
    system = load_assessment_codes(CODES_FILE)
    assert system.url == ASSESSMENT_SYSTEM
    assert {"it-trial-pain-relief-pct", "psych-clearance", "trial-waiver-reason"} <= system.codes


@pytest.mark.skipif(not CONTRACT.is_file(), reason="the shared contract is not beside this checkout")
def test_the_codes_are_exactly_the_contracts() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    section = text[text.index("## 5. Project assessment code system") : text.index("## 6.")]
    contract_codes = re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M)
    assert [c.code for c in load_assessment_codes(CODES_FILE).concepts] == contract_codes


def test_the_code_system_is_served_as_valid_fhir() -> None:
    response = create_app(open_settings(), catalog()).test_client().get("/fhir/CodeSystem/idds-assessment")
    assert response.status_code == 200
    assert response.mimetype == "application/fhir+json"
    body = response.get_json()
    CodeSystem.model_validate(body)
    assert body["url"] == ASSESSMENT_SYSTEM
    assert body["content"] == "complete"
    assert body["count"] == len(body["concept"]) == len(load_assessment_codes(CODES_FILE).concepts)
    relief = next(c for c in body["concept"] if c["code"] == "it-trial-pain-relief-pct")
    assert relief["display"] == "pain relief during the intrathecal trial"
    assert "valueQuantity % (0-100)" in relief["definition"]


def test_an_unknown_code_system_is_404() -> None:
    response = create_app(open_settings(), catalog()).test_client().get("/fhir/CodeSystem/other")
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["code"] == "not-found"


def test_a_code_listed_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    broken = tmp_path / "assessment-codes.yaml"
    broken.write_text(
        CODES_FILE.read_text(encoding="utf-8")
        + '  - code: psych-clearance\n    display: "again"\n    value: "`valueBoolean`"\n'
        + "    answer: {type: boolean}\n",
        encoding="utf-8",
    )
    with pytest.raises(
        AssessmentCodesError, match=r"assessment-codes\.yaml:\d+: code 'psych-clearance' twice"
    ):
        load_assessment_codes(broken)


def test_policies_may_only_name_codes_of_the_file(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(policies.directory(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    text = (root / "assessment-codes.yaml").read_text(encoding="utf-8")
    (root / "assessment-codes.yaml").write_text(
        text.replace("  - code: psych-clearance\n", "  - code: psych-clearance-renamed\n"), encoding="utf-8"
    )
    with pytest.raises(ValueError, match="'psych-clearance' is not an assessment code"):
        load_catalog(root)


def test_the_catalog_refuses_another_url(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(policies.directory(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    text = (root / "assessment-codes.yaml").read_text(encoding="utf-8")
    (root / "assessment-codes.yaml").write_text(text.replace("idds-assessment", "other"), encoding="utf-8")
    with pytest.raises(AssessmentCodesError, match="url must be"):
        load_catalog(root)


def _scale_codes(root: Path, codes: dict[str, str]) -> None:
    """Rewrite the `scale` qualifier's codes of it-trial-scale-reduction in a copied folder."""

    def edit(raw: Any) -> None:
        [concept] = [c for c in raw["concepts"] if c["code"] == "it-trial-scale-reduction"]
        concept["answer"]["qualifier"]["codes"] = codes

    edit_yaml(root / "assessment-codes.yaml", edit)


SCALES = {
    "ashworth": "ashworth-score",
    "modified-ashworth": "modified-ashworth-score",
    "spasm-frequency": "spasm-frequency-score",
}


def test_the_scale_a_reduction_is_recorded_on_is_the_assessment_codes_data(tmp_path: Path) -> None:
    """words21 (debt 4.4): which score a spasticity trial's recorded reduction is on (its `scale`
    component, contract §5) was a mapping in service/engine/checks/trials.py; it is the assessment
    codes' data, read through the Terminology."""
    assert catalog().terminology.qualified_by("it-trial-scale-reduction", "ashworth") == "ashworth-score"
    assert catalog().terminology.qualified_by("it-trial-scale-reduction", "tardieu") is None
    root = copy_policies(tmp_path)
    _scale_codes(root, {**SCALES, "ashworth": "spasm-frequency-score", "spasm-frequency": "ashworth-score"})
    swapped = load_catalog(root).terminology
    assert swapped.qualified_by("it-trial-scale-reduction", "ashworth") == "spasm-frequency-score"


@pytest.mark.parametrize(
    ("codes", "refused"),
    [
        (
            {"ashworth": "ashworth-score", "modified-ashworth": "modified-ashworth-score"},
            "a code for each option",
        ),
        ({**SCALES, "tardieu": "ashworth-score"}, "a code for each option"),
        ({**SCALES, "ashworth": "ashworth-scale"}, "ashworth-scale not among the assessment codes"),
        ({**SCALES, "ashworth": "psych-clearance"}, "must name the scales a trial is scored on"),
        ({**SCALES, "ashworth": "modified-ashworth-score"}, "must name the scales a trial is scored on"),
    ],
)
def test_a_scale_option_without_its_score_is_refused(
    tmp_path: Path, codes: dict[str, str], refused: str
) -> None:
    """Each `scale` option names the score it is counted in, one of those a trial is scored on, and every
    score has an option: an edit that leaves one out (or names another assessment) stops start-up."""
    root = copy_policies(tmp_path)
    _scale_codes(root, codes)
    with pytest.raises(AssessmentCodesError, match=refused):
        load_catalog(root)
