"""The package built from a checkout holds what the checkout holds now: setuptools reuses `build/lib`
from an earlier build, so a policy or value set renamed or removed since would stay installed."""

from __future__ import annotations

import shutil

from setuptools.command.build_py import build_py


class FreshBuildPy(build_py):
    """`build_py` into an empty `build/lib` (an editable install builds nothing there)."""

    def run(self) -> None:
        if not self.editable_mode:
            shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()
