"""gunicorn's error log under `idds-crd serve` (service/serving.py `ServiceLogger`): a client whose
socket read or write timed out is one info line, any other failure keeps its stack trace."""

from __future__ import annotations

import logging
import socket

import pytest
from gunicorn.config import Config

from service.serving import ServiceLogger


def log_failure(failure: BaseException | None) -> None:
    """gunicorn's thread logging `failure` as it does a socket error."""
    logger = ServiceLogger(Config())
    try:
        if failure is None:
            ours, theirs = socket.socketpair()
            with ours, theirs:
                ours.settimeout(0.01)
                ours.recv(1)
        else:
            raise failure
    except OSError:
        logger.exception("Socket error processing request.")


def test_a_socket_timeout_is_one_line_without_a_trace(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="gunicorn.error"):
        log_failure(None)
    [record] = caplog.records
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "within the read timeout" in record.getMessage()


def test_another_timeout_keeps_its_trace(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="gunicorn.error"):
        log_failure(TimeoutError("the audit store did not answer"))
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
