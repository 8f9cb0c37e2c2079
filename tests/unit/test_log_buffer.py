"""The log written by a thread of its own (service/log_buffer.py, serve27): a stderr nobody reads
holds no thread that logs; lines beyond the buffer are dropped and counted (in /metrics too); what is
held is written in order, each line once, when the reader comes back or the process stops; a line is
formatted where it is logged (its request id); a forked child writes its own lines, not its
parent's. The real `idds-crd serve` with a pipe nobody reads: tests/integration/test_serving.py."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.log_buffer import BufferedLogHandler, on_dropped_lines
from service.request_log import ACCESS_LOGGER, JsonLinesFormatter
from service.settings import SettingsError, settings_from_mapping
from tests.builders import catalog
from tests.logging_support import root_logging
from tests.observability_support import scrape, value
from tests.support import open_settings

DROPPED = "idds_crd_log_lines_dropped_total"


class StalledStream(io.StringIO):
    """A stream whose reader stopped: a write waits until `resume` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.resume = threading.Event()

    def write(self, text: str) -> int:
        self.resume.wait()
        return super().write(text)


class RefusingStream(io.StringIO):
    """A stream whose reader went away: every write fails as a broken pipe does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.fixture
def handlers() -> Iterator[list[BufferedLogHandler]]:
    """Handlers a test makes, each closed after it (its writer thread ended; a stalled stream let go)."""
    made: list[BufferedLogHandler] = []
    yield made
    for handler in made:
        if isinstance(handler.stream, StalledStream):
            handler.stream.resume.set()
        handler.close()


def buffered(made: list[BufferedLogHandler], stream: io.StringIO, capacity: int) -> logging.Logger:
    """A logger of its own writing `%(message)s` lines through a BufferedLogHandler on `stream`."""
    handler = BufferedLogHandler(stream, capacity)
    handler.setFormatter(logging.Formatter("%(message)s"))
    made.append(handler)
    logger = logging.getLogger(f"idds_crd.test.buffered.{len(made)}.{id(handler)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger


def log_in_a_thread(logger: logging.Logger, lines: list[str]) -> bool:
    """Whether a thread logging `lines` is done within 10 s (a thread blocked in a write never is)."""
    thread = threading.Thread(target=lambda: [logger.info(line) for line in lines], daemon=True)
    thread.start()
    thread.join(10)
    return not thread.is_alive()


def test_a_stream_nobody_reads_holds_no_thread_that_logs(handlers: list[BufferedLogHandler]) -> None:
    """Ten lines to a stalled stream, three lines' room: the thread logging them is not held; three
    wait, seven are dropped and counted (to the observer too); once read, the three come out in order."""
    stream = StalledStream()
    logger = buffered(handlers, stream, capacity=3 * len("line-0\n"))
    told: list[int] = []
    on_dropped_lines(told.append)
    try:
        assert log_in_a_thread(logger, [f"line-{n}" for n in range(10)])
    finally:
        on_dropped_lines(None)
    [handler] = handlers
    assert handler.dropped == 7 and sum(told) == 7
    stream.resume.set()
    handler.flush()
    assert stream.getvalue() == "line-0\nline-1\nline-2\n"


def test_flushing_waits_for_a_reader_that_never_comes_back_a_bounded_time(
    handlers: list[BufferedLogHandler],
) -> None:
    stream = StalledStream()
    logger = buffered(handlers, stream, capacity=1024)
    logger.info("held")
    flushing = threading.Thread(target=lambda: handlers[0].flush(timeout=0.2), daemon=True)
    flushing.start()
    flushing.join(10)
    assert not flushing.is_alive()
    assert stream.getvalue() == ""


def test_a_flush_that_gave_up_is_not_waited_for_again(handlers: list[BufferedLogHandler]) -> None:
    """logging's shutdown flushes each handler, then closes it, which flushes again: a reader that
    wrote nothing in the first wait is not waited for a second time (nor a third)."""
    stream = StalledStream()
    logger = buffered(handlers, stream, capacity=1024)
    logger.info("held")
    handlers[0].flush(timeout=0.2)
    again = threading.Thread(target=lambda: handlers[0].flush(timeout=600), daemon=True)
    again.start()
    again.join(10)
    assert not again.is_alive()
    stream.resume.set()  # the reader is back: once it has taken a line, a flush waits for it again
    deadline = time.monotonic() + 10
    while stream.getvalue() != "held\n" and time.monotonic() < deadline:
        time.sleep(0.01)
    logger.info("after")
    handlers[0].flush(timeout=600)
    assert stream.getvalue() == "held\nafter\n"


def test_what_is_held_is_written_when_the_handler_closes(handlers: list[BufferedLogHandler]) -> None:
    """logging.shutdown, at a process's exit, closes each handler: every line held is written first."""
    stream = io.StringIO()
    logger = buffered(handlers, stream, capacity=1 << 20)
    for n in range(500):
        logger.info("line-%d", n)
    handlers[0].close()
    assert stream.getvalue() == "".join(f"line-{n}\n" for n in range(500))
    logger.info("after closing")  # neither written nor an error
    assert handlers[0].dropped == 0 and "after closing" not in stream.getvalue()


def test_a_line_logged_while_a_line_is_being_handed_over_is_not_waited_for(
    handlers: list[BufferedLogHandler],
) -> None:
    """review27e L1: a signal handler that logs (gunicorn's worker SIGWINCH handler, at DEBUG) may run in
    a thread that is handing a line over, inside the handler's lock: a lock that thread cannot take again
    held it forever. Here the hand-over itself logs a line once, as such a handler would."""
    stream = io.StringIO()
    logger = buffered(handlers, stream, capacity=1 << 20)
    handler = handlers[0]
    lines = handler._lines
    interrupted = threading.Event()

    class Interrupting:
        def put(self, item: tuple[str, int] | None) -> None:
            if not interrupted.is_set():
                interrupted.set()
                logger.info("from a signal handler")
            lines.put(item)

        def get(self) -> tuple[str, int] | None:
            return lines.get()

    handler._lines = Interrupting()  # type: ignore[assignment]
    logging_thread = threading.Thread(target=logger.info, args=("a line",), daemon=True)
    logging_thread.start()
    logging_thread.join(10)
    assert not logging_thread.is_alive()
    handler.flush()
    assert sorted(stream.getvalue().splitlines()) == ["a line", "from a signal handler"]


def test_a_line_longer_than_the_buffer_is_written_when_nothing_else_waits(
    handlers: list[BufferedLogHandler],
) -> None:
    """review27e L3: a line longer than `log_buffer_bytes` (a long traceback) was dropped though the
    reader kept up and nothing waited; it is written, and the budget still bounds what waits behind it."""
    stream = StalledStream()
    logger = buffered(handlers, stream, capacity=64)
    long_line = "x" * 200
    logger.info(long_line)
    logger.info("short, behind it")  # the long line held: over the budget, dropped
    assert handlers[0].dropped == 1
    stream.resume.set()
    handlers[0].flush()
    assert stream.getvalue().splitlines() == [long_line]


def test_lines_a_stream_refuses_are_counted_and_never_raised(
    handlers: list[BufferedLogHandler], capsys: pytest.CaptureFixture[str]
) -> None:
    logger = buffered(handlers, RefusingStream(), capacity=1024)
    assert log_in_a_thread(logger, ["a", "b"])
    handlers[0].flush()
    assert handlers[0].dropped == 2
    assert capsys.readouterr().err == ""  # no traceback of logging's own, to the stderr that failed


def test_a_line_is_formatted_where_it_is_logged_with_its_request_id(
    handlers: list[BufferedLogHandler],
) -> None:
    """The request id is the logging thread's (a context variable): the writer thread has none."""
    stream = io.StringIO()
    handler = BufferedLogHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    handlers.append(handler)
    access = logging.getLogger(ACCESS_LOGGER)
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client = create_app(open_settings(), catalog()).test_client()
        assert client.get("/healthz", headers={"X-Request-Id": "buffered-1"}).status_code == 200
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    handler.close()
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == "buffered-1" and line["path"] == "/healthz"


def test_dropped_lines_are_counted_in_the_apps_metrics(handlers: list[BufferedLogHandler]) -> None:
    app = create_app(open_settings(), catalog())
    try:
        logger = buffered(handlers, StalledStream(), capacity=len("kept\n"))
        assert log_in_a_thread(logger, ["kept", "dropped", "dropped too"])
        assert value(scrape(app), DROPPED) == 2
    finally:
        on_dropped_lines(None)


def test_a_forked_child_writes_its_own_lines_not_its_parents(handlers: list[BufferedLogHandler]) -> None:
    """A gunicorn worker is a forked child: the parent's writer thread is not in it, and the lines the
    parent still holds are the parent's to write. The child gets a writer of its own."""
    parent_stream = StalledStream()
    logger = buffered(handlers, parent_stream, capacity=1024)
    logger.info("the parent's, held")
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover (the child's outcome is its exit status and what it wrote)
        status = 1
        try:
            os.close(read_end)
            handlers[0].setStream(os.fdopen(write_end, "w"))
            logger.info("the child's")
            handlers[0].close()
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as written:
        child_wrote = written.read()
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert child_wrote == "the child's\n"
    parent_stream.resume.set()
    handlers[0].flush()
    assert parent_stream.getvalue() == "the parent's, held\n"


def test_the_log_buffer_is_read_from_the_configuration() -> None:
    assert settings_from_mapping({}).log_buffer_bytes == 4 * 1024 * 1024
    assert settings_from_mapping({"log_buffer_bytes": 65536}).log_buffer_bytes == 65536
    for bad in (0, -1, "4 MiB", True):
        with pytest.raises(SettingsError, match="log_buffer_bytes"):
            settings_from_mapping({"log_buffer_bytes": bad})


def test_a_warning_is_a_line_of_the_log_not_written_to_stderr_directly() -> None:
    """Under `configure_logging` a warning goes through the log's writer thread like any line: written
    to stderr by the thread that warned, it would wait for a reader that stopped."""
    with root_logging("json", "INFO") as stream:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn("a library's warning", UserWarning, stacklevel=1)
        finally:
            logging.captureWarnings(False)
    [line] = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["logger"] == "py.warnings" and "a library's warning" in line["message"]


def test_the_writer_thread_takes_no_signal(handlers: list[BufferedLogHandler]) -> None:
    """A signal the kernel gave the writer thread would not interrupt the main thread's wait (the
    gunicorn master waits on its signal queue): the writer blocks them all."""
    before = {t.native_id for t in threading.enumerate()}
    buffered(handlers, io.StringIO(), capacity=1024).info("started")
    handlers[0].flush()
    [writer] = [t for t in threading.enumerate() if t.native_id not in before]
    status = Path(f"/proc/self/task/{writer.native_id}/status").read_text()
    blocked = int(status.split("SigBlk:", 1)[1].split()[0], 16)
    assert all(blocked & (1 << (number - 1)) for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD))
