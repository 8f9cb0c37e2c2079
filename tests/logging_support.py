"""The process's root logger configured as `idds-crd serve` configures it, for one test, then put back."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from service.request_log import configure_logging


@contextmanager
def root_logging(log_format: str, level: str) -> Iterator[io.StringIO]:
    """`configure_logging(log_format, level)`, its lines written to the StringIO yielded; afterwards its
    handler closed (what it holds written, its writer thread ended: service/log_buffer.py) and the root
    logger's handlers and level as they were."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stream = io.StringIO()
    try:
        configure_logging(log_format, level)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        yield stream
    finally:
        root.handlers[0].close()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
