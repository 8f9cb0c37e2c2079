"""Start-up without the cyclic garbage collector walking what start-up builds.

Importing the service and loading its catalog make a few hundred thousand long-lived objects
(modules, classes, functions, compiled policies) and hardly any garbage. With the collector on, it
runs about 170 times while they are made, each time walking more of them: some 70 ms of a start
that must stay under 0.5 s (bench/startup.py). Merely switching it off for that while moves the cost,
it does not remove it: the first collection afterwards walks everything made meanwhile. So start-up
runs with the collector paused and ends by moving what it made to the permanent generation
(`gc.freeze`), which later collections skip. In a forking server that is also what the Python
documentation recommends before `fork()`: a worker's collections then never write to (and so never
copy) the pages it shares with the master.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused(freeze: bool = False) -> Iterator[None]:
    """Run the block without cyclic collection; with `freeze`, keep what it made out of later ones.

    Resumes collection afterwards only if it was on before (nested pauses keep it off)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if freeze:
            gc.freeze()
        if was_enabled:
            gc.enable()


# While a call is answered, the collector's young collections find hardly any garbage: what they walk
# is what the call still holds (its body, record and answer). At CPython's default of 700, a pump
# order-sign with a Synthea-sized prefetch (bench/pipeline_split.py's body) ran about 12 young and one
# middle collection per call, 1.5 ms of its CPU; at 10,000, one young collection in ten calls, 0.2 ms
# (timed with gc.callbacks). A demo chart's call triggers about none either way.
YOUNG_COLLECTION_THRESHOLD = 10_000


def settle() -> None:
    """Once a worker's app is built: collect what building it left behind (only what the worker made
    since the fork: the master froze the rest), then freeze the app, which lives as long as the
    worker, so no later collection walks it again; and collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
