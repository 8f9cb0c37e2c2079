"""The installed package's version: stamped on the FHIR resources the service publishes."""

from __future__ import annotations

from functools import cache
from importlib import metadata


@cache
def service_version() -> str:
    try:
        return metadata.version("idds-crd")
    except metadata.PackageNotFoundError:
        return "0+unknown"
