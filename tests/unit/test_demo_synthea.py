"""Where the demo finds the Synthea patients: beside the repository, whether the service runs from
its source tree or from a package `make demo` installed into ./.venv."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.demo.synthea import BESIDE_THE_REPOSITORY, SYNTHEA_DIRS, synthea_files


def test_an_installed_demo_run_in_the_repository_finds_them_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fixtures = tmp_path / "shared" / "fhir-fixtures" / "synthea"
    fixtures.mkdir(parents=True)
    (fixtures / "Bradly.json").write_text("{}")
    repository = tmp_path / "idds-crd"
    repository.mkdir()
    monkeypatch.chdir(repository)
    installed = tmp_path / "idds-crd" / ".venv" / "lib" / BESIDE_THE_REPOSITORY  # not there
    assert synthea_files((installed, BESIDE_THE_REPOSITORY)) == [fixtures / "Bradly.json"]
    assert BESIDE_THE_REPOSITORY in SYNTHEA_DIRS


def test_without_them_there_are_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert synthea_files((tmp_path / "nowhere", BESIDE_THE_REPOSITORY)) == []
