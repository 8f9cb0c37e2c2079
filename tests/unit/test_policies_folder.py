"""An operator's own policies folder (the `policies` setting): the app factory, `evaluate` and `demo`
judge by it, its broken files stop start-up naming them, the compiled-catalog cache keeps it apart
from every other folder, and `policies check DIR` checks it against the installed schemas."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from service.app import create_app
from service.catalog import load_catalog
from service.cli import main
from service.demo.runner import DATA
from service.policy import PolicyError
from service.settings import Settings, SettingsError, load_settings
from tests.catalog_support import CMM210_SOURCE, copy_policies, edit_yaml
from tests.support import open_settings

CMM210 = "cmm-210-idds"
OWN_NAME = "Example Health Plan"  # the operator's name for the CMM-210 payer
REQUEST = DATA / "requests" / "order-select-62362-demo-cmm210-replacement.json"


@pytest.fixture
def own(tmp_path: Path) -> Path:
    """An operator's folder: the shipped policies, the CMM-210 payer under their own name."""
    root = copy_policies(tmp_path / "own")
    edit_yaml(
        root / "payers.yaml",
        lambda raw: next(p for p in raw["payers"] if p["key"] == "cmm210").update(name=OWN_NAME),
    )
    return root


def config(tmp_path: Path, policies: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(f"auth:\n  required: false\npolicies: {policies}\n", encoding="utf-8")
    return path


def break_geha(root: Path) -> None:
    edit_yaml(root / "geha.yaml", lambda raw: raw["criteria"][0]["test"].update(valuesets=["gone"]))


def test_the_setting_names_a_folder(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, tmp_path / "mine")).policies == tmp_path / "mine"
    assert Settings().policies is None
    empty = tmp_path / "empty.yaml"
    empty.write_text("policies: ''\n", encoding="utf-8")
    with pytest.raises(SettingsError, match="policies: expected a directory path"):
        load_settings(empty)


def test_the_app_factory_judges_by_the_folder_the_setting_names(own: Path) -> None:
    app = create_app(open_settings(policies=own))
    catalog = app.extensions["idds_crd"].environment.catalog
    assert catalog.directory == own.resolve()
    assert next(p for p in catalog.payers if p.key == "cmm210").name == OWN_NAME


def test_the_policy_page_shows_the_source_judged_by_not_an_edit_made_since(own: Path) -> None:
    """The page shows the source document read when the policies were compiled: an edit made after
    start-up (which the service judges by only after a restart) does not show before it (review s16
    OPS-6). Before, the page read the file on every request."""
    client = create_app(open_settings(policies=own)).test_client()
    document = own / "sources" / CMM210_SOURCE
    first_line = document.read_text(encoding="utf-8").splitlines()[0]
    document.write_text("AN EDIT MADE AFTER START-UP\n", encoding="utf-8")
    page = client.get(f"/policies/{CMM210}").get_data(as_text=True)
    assert "AN EDIT MADE AFTER START-UP" not in page
    assert escape(first_line) in page


def test_evaluate_judges_by_the_configured_folder(
    own: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(REQUEST), "--config", str(config(tmp_path, own))]) == 0
    summaries = [card["summary"] for card in json.loads(capsys.readouterr().out)["cards"]]
    assert summaries and all(summary.startswith(OWN_NAME) for summary in summaries), summaries


def test_demo_judges_by_the_configured_folder(
    own: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo makes its own deployment; of a configuration it takes the policies folder only."""
    import service.demo.fhir_server
    import service.demo.runner

    started: list[dict[str, Any]] = []
    monkeypatch.setattr(service.demo.fhir_server, "installed", lambda: True)
    monkeypatch.setattr(service.demo.runner, "run_demo", lambda *args, **kwargs: started.append(kwargs) or 0)
    assert main(["demo", "--once", "--config", str(config(tmp_path, own))]) == 0
    assert started[0]["policies"] == own
    key = service.demo.runner.generate_es384_key()
    settings = service.demo.runner.demo_settings("http://x", "http://f", key, tmp_path, policies=own)
    assert settings.policies == own


def test_a_broken_file_in_the_folder_stops_start_up_naming_it(
    own: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    break_geha(own)
    with pytest.raises(PolicyError, match=r"^geha\.yaml:\d+: criteria\.0\.test .*unknown value set 'gone'"):
        create_app(open_settings(policies=own))
    assert main(["evaluate", str(REQUEST), "--config", str(config(tmp_path, own))]) == 2
    assert capsys.readouterr().err.startswith("idds-crd: geha.yaml:")


def test_a_folder_that_is_not_there_stops_start_up_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "not-mounted"
    assert main(["evaluate", str(REQUEST), "--config", str(config(tmp_path, missing))]) == 2
    assert capsys.readouterr().err == f"idds-crd: {missing}: no such policies folder\n"


def test_two_folders_never_share_a_cached_catalog(tmp_path: Path) -> None:
    """Each catalog reads its own folder (its policies' source documents): the same files elsewhere
    are another entry."""
    first, second = copy_policies(tmp_path / "a"), copy_policies(tmp_path / "b")
    for root in (first, second):
        with (root / "sources" / CMM210_SOURCE).open("a", encoding="utf-8") as document:
            document.write("\n(the operator's copy)\n")
    assert load_catalog(first).directory == first.resolve()
    assert load_catalog(second).directory == second.resolve()
    page = create_app(open_settings(policies=second)).test_client().get(f"/policies/{CMM210}")
    assert "the operator&#39;s copy" in page.get_data(as_text=True)


def test_check_uses_the_installed_schemas_and_says_so(
    own: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A folder's own copy of a schema is not what the service reads by: check says it is not used."""
    schema_path = own / "schema" / "payers.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    schema["properties"]["payers"]["items"]["properties"]["tier"] = {"type": "string"}
    schema_path.write_text(json.dumps(schema), encoding="utf-8")
    edit_yaml(own / "payers.yaml", lambda raw: raw["payers"][0].update(tier="gold"))
    with caplog.at_level(logging.WARNING, logger="service.catalog"):
        assert main(["policies", "check", str(own)]) == 1
    assert "Additional properties are not allowed ('tier' was unexpected)" in capsys.readouterr().err
    assert [r.getMessage() for r in caplog.records] == [
        f"{schema_path.resolve()} differs from the installed schema, which is the one used"
    ]
