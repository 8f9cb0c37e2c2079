"""The Synthea patients of `../shared/fhir-fixtures/synthea/` (beside the repository), for the demo.

They are real-world-shaped records (SNOMED problem lists, product RxNorm codes, hundreds of
Observations), not pump candidates, and take tens of seconds to load; so the demo loads them in
the background after the service is ready, and only when the folder is there (a checkout without
the shared fixtures, or an installed package, has none).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

BESIDE_THE_REPOSITORY = Path("..") / "shared" / "fhir-fixtures" / "synthea"
# Found from this source tree (an editable install, the tests), else from the working directory
# (`make demo` runs in the repository and installs the package elsewhere, into ./.venv).
SYNTHEA_DIRS = (Path(__file__).resolve().parents[2] / BESIDE_THE_REPOSITORY, BESIDE_THE_REPOSITORY)


class BundleLoader(Protocol):
    def load_file(self, path: Path) -> object: ...


def synthea_files(directories: tuple[Path, ...] = SYNTHEA_DIRS) -> list[Path]:
    """The Synthea bundles of the first of `directories` that exists (none when none does)."""
    found = next((d for d in directories if d.is_dir()), None)
    return sorted(found.resolve().glob("*.json")) if found is not None else []


def load_in_background(fhir: BundleLoader, files: list[Path]) -> threading.Thread | None:
    """Load `files` into `fhir` on a daemon thread, printing one line when done (or failed)."""
    if not files:
        return None

    def load() -> None:
        started = time.monotonic()
        for path in files:
            try:
                fhir.load_file(path)
            except Exception as exc:  # the demo goes on with its own patients
                print(f"Synthea: loading stopped at {path.name}: {exc}", flush=True)
                return
        print(f"Synthea: {len(files)} patients loaded in {time.monotonic() - started:.0f} s", flush=True)

    thread = threading.Thread(target=load, name="synthea-loader", daemon=True)
    thread.start()
    return thread
