"""`idds-crd audit export --payer/--patient`: a payer's CRD metric data, or the calls about one
patient, without the rest of the trail (a compliance officer answering one payer or one patient)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.app import create_app
from service.catalog import Catalog
from service.cli import main
from service.settings import StoreSettings
from tests.audit_support import secret_call, settled_at_once
from tests.support import no_client, open_settings, post_json

SAMPLES = (
    "order-select-62362-demo-meets",  # GEHA
    "order-select-62362-demo-two-coverages",  # GEHA and Capital Blue Cross
    "order-select-62362-demo-kaiser-medicare",  # Kaiser Permanente Washington (Medicare)
)


@pytest.fixture(autouse=True)
def _exports_read_up_to_now(monkeypatch: pytest.MonkeyPatch) -> None:
    settled_at_once(monkeypatch)


@pytest.fixture
def config(compiled_catalog: Catalog, tmp_path: Path) -> str:
    """A trail on a file holding one call of each of `SAMPLES`; the configuration naming it."""
    url = f"sqlite:///{tmp_path}/audit.sqlite3"
    app = create_app(open_settings(store=StoreSettings(url=url)), compiled_catalog, client_factory=no_client)
    for name in SAMPLES:
        path, body, _ = secret_call(name)
        assert post_json(app.test_client(), path, body).status_code == 200
    config = tmp_path / "config.yaml"
    config.write_text(f"store:\n  url: {url}\n", encoding="utf-8")
    return str(config)


def test_a_filter_that_finds_nothing_says_so(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "export", "--payer", "gehaa", "--config", config]) == 0  # misspelt
    out, err = capsys.readouterr()
    assert out == "" and "no call in that window for --payer gehaa" in err
    assert main(["audit", "export", "--patient", "demo-meet", "--payer", "geha", "--config", config]) == 0
    assert "no call in that window for --payer geha and --patient demo-meet" in capsys.readouterr().err
    assert main(["audit", "export", "--payer", "geha", "--config", config]) == 0
    assert "no call" not in capsys.readouterr().err


def exported(capsys: pytest.CaptureFixture[str], config: str, *args: str) -> list[dict[str, object]]:
    assert main(["audit", "export", *args, "--config", config]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def payer_values(lines: list[dict[str, object]]) -> list[object]:
    return sorted(line["payerId"]["value"] for line in lines)  # type: ignore[index]


def test_export_of_one_payer_holds_only_its_lines(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert payer_values(exported(capsys, config)) == ["cbc", "geha", "geha", "kpwa"]
    assert payer_values(exported(capsys, config, "--payer", "geha")) == ["geha", "geha"]
    assert payer_values(exported(capsys, config, "--payer", "cbc")) == ["cbc"]
    assert exported(capsys, config, "--payer", "no-such-payer") == []


def test_export_of_one_patient_holds_only_the_calls_about_them(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = exported(capsys, config, "--patient", "demo-two-coverages")
    assert payer_values(lines) == ["cbc", "geha"]
    assert len({line["hookInstance"] for line in lines}) == 1
    one_payer = exported(capsys, config, "--patient", "demo-two-coverages", "--payer", "cbc")
    assert payer_values(one_payer) == ["cbc"]
    assert exported(capsys, config, "--patient", "someone-else") == []
