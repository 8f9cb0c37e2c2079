"""The shipped demo data is valid FHIR (R4B models) and matches the service's own expectations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from service.demo.runner import patient_files, request_files
from service.hooks.models import parse_hook_request
from service.registry import service_for_hook


def validate(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.mark.parametrize("path", patient_files(), ids=lambda p: p.stem)
def test_patient_bundles_are_valid_fhir(path: Path) -> None:
    bundle = json.loads(path.read_text(encoding="utf-8"))
    validate(bundle)
    assert bundle["type"] == "transaction"
    assert all(e["request"]["method"] == "PUT" for e in bundle["entry"])


@pytest.mark.parametrize("path", request_files(), ids=lambda p: p.stem)
def test_sample_requests_are_valid(path: Path) -> None:
    body = json.loads(path.read_text(encoding="utf-8"))
    parse_hook_request(body, service_for_hook(body["hook"]))
    for key in ("draftOrders", "appointments"):
        if key in body["context"]:
            validate(body["context"][key])
    for key, value in body["prefetch"].items():
        assert value is None or validate(value) is None, key
