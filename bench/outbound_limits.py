"""What a hostile FHIR server costs the service: memory for a flood, time for a drip or a stall.

Runs the FHIR client (as one hook call would) against the misbehaving loopback servers of
tests/hostile_support.py and prints, per server, the wall time of the search and the peak of
Python memory allocated meanwhile (tracemalloc). The flood is read twice: with the default
`fhir.max_response_bytes` (streamed and cut) and with a cap above its size (read whole, as the
client did before the cap). Asserts nothing; see bench/RESULTS.md and bench/NOTES.md.

    .venv/bin/python bench/outbound_limits.py [--deadline 1.5]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.fhir.client import MAX_RESPONSE_BYTES, FhirClient, FhirError, SessionPool
from tests.hostile_support import FLOOD_BYTES, HostileFhirServer

RUN_ALL: list[str] = []  # arguments in `python -m bench` (bench/__main__.py)


def measure(base_url: str, deadline_seconds: float, cap: int) -> tuple[float, float, str]:
    """(seconds, peak MiB allocated, outcome) of one search."""
    client = FhirClient(
        base_url,
        None,
        deadline_seconds,
        deadline=time.monotonic() + deadline_seconds,
        sessions=SessionPool(),
        max_response_bytes=cap,
    )
    tracemalloc.start()
    started = time.monotonic()
    try:
        result = client.search("Condition", {"patient": "p1"})
        outcome = f"{len(result.resources)} resources"
    except FhirError as exc:
        outcome = exc.reason
    seconds = time.monotonic() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deadline", type=float, default=1.5)
    args = parser.parse_args()
    runs = [
        ("flood 50 MB, default cap", "flood", MAX_RESPONSE_BYTES, 30.0),
        ("flood 50 MB, no effective cap", "flood", 2 * FLOOD_BYTES, 30.0),
        ("drip (1 byte / 100 ms)", "drip", MAX_RESPONSE_BYTES, args.deadline),
        ("stall", "stall", MAX_RESPONSE_BYTES, args.deadline),
    ]
    print("| server | cap | deadline s | wall s | peak MiB (tracemalloc) | outcome |")
    print("|---|---:|---:|---:|---:|---|")
    for label, mode, cap, deadline in runs:
        with HostileFhirServer(mode) as server:
            seconds, peak, outcome = measure(server.base_url, deadline, cap)
        row = (label, f"{cap / 2**20:.0f} MiB", f"{deadline:.1f}", f"{seconds:.2f}", f"{peak:.1f}", outcome)
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
