"""When the request a thread is answering arrived whole, as the serving worker saw it.

A hook call's deadline (`fhir.deadline_seconds`) is the EHR's, so it counts from when the call
arrived: time spent queued for a thread counts against it, and a call that waited behind others
still answers within it. The worker that reads requests whole (service.whole_requests) notes that
moment for the thread that takes the request. Elsewhere (the development server, a test client,
another WSGI server) nothing is noted, and a call's time counts from when its handling began.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

_noted = threading.local()


def arrived_at() -> float | None:
    """When this thread's request arrived whole (`time.monotonic()`), if its server noted it."""
    return getattr(_noted, "at", None)


@contextmanager
def arrived(at: float) -> Iterator[None]:
    """Notes, while this thread answers a request, when that request arrived."""
    _noted.at = at
    try:
        yield
    finally:
        _noted.at = None
