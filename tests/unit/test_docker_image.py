"""docker/Dockerfile installs pinned versions: every package the image's install asks for, directly
or through the PostgreSQL extra, is pinned in docker/constraints.txt (written by `make lock`) at a
version pyproject.toml allows. Adding or changing a dependency without `make lock` fails here."""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def pinned() -> dict[str, str]:
    versions = {}
    for line in (ROOT / "docker" / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"docker/constraints.txt: {line!r} is not pinned with =="
            versions[canonicalize_name(name)] = version.strip()
    return versions


def image_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["postgres"]
    return [Requirement(text) for text in wanted]


def test_every_dependency_of_the_image_is_pinned_at_an_allowed_version() -> None:
    versions = pinned()
    for requirement in image_requirements():
        name = canonicalize_name(requirement.name)
        assert name in versions, f"{requirement.name} is not in docker/constraints.txt: run `make lock`"
        assert requirement.specifier.contains(versions[name], prereleases=True), (
            f"docker/constraints.txt pins {requirement.name}=={versions[name]}, "
            f"outside {requirement.specifier}"
        )


def test_the_image_installs_with_the_constraints() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    assert "docker/constraints.txt" in dockerfile
    assert "pip install --no-cache-dir -c constraints.txt '.[postgres]'" in dockerfile


def test_the_image_fills_the_dataclass_code_cache_as_the_services_user() -> None:
    """perf21: a new container's cache directory is empty, so its first start compiled every dataclass
    method; the image compiles them at build, after `USER` (a file root wrote is refused)."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    fill = dockerfile.index('RUN python -c "import service.app"')
    assert dockerfile.index(f"USER {SERVICE_UID}:{SERVICE_UID}") < fill
    assert dockerfile.index("ENV IDDS_CRD_CATALOG_CACHE=/var/cache/idds-crd") < fill


SERVICE_UID = 24816


def test_the_service_runs_as_its_own_uid_which_owns_its_caches_and_trail() -> None:
    """attack22 L4: as `nobody` (65534, the uid many images run as) any container of that uid mounting the
    cache or trail volume could write code the service trusts; a numeric USER lets runAsNonRoot check it."""
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    [user] = [line for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert user == f"USER {SERVICE_UID}:{SERVICE_UID}"
    assert f"useradd --system --uid {SERVICE_UID} --gid {SERVICE_UID}" in dockerfile
    for directory in ("/var/cache/idds-crd", "/var/lib/idds-crd"):
        assert f"install -d -o idds-crd -g idds-crd -m 0700 {directory}" in dockerfile
