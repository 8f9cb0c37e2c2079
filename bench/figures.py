"""One line per headline figure, in a form `python -m bench` collects into bench/RESULTS.md.

A benchmark prints whatever tables it likes; the figures an issue sets a target on (or that a reader
should find at a glance) it also prints through `figure`, as `figure <key> = <value> <unit>`.
The keys bench/__main__.py knows for issue 12's targets are listed in its TARGETS.
"""

from __future__ import annotations

import re

FIGURE_LINE = re.compile(r"^figure (?P<key>[A-Za-z0-9_.\-]+) = (?P<value>-?[0-9.eE+\-]+) (?P<unit>.*)$")


def figure(key: str, value: float, unit: str) -> None:
    """Print one collectable figure (never a verdict: the reader compares it with its target)."""
    print(f"figure {key} = {value:.6g} {unit}", flush=True)
