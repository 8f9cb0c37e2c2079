"""The process's log written by a thread of its own, so that no request waits for the log's reader.

A process's log goes to stderr, and whoever reads stderr (a container's log driver, a pipe to a log
shipper) may stop reading: a blocking log driver, a shipper that hung. Written in the thread that
logs, each line then waits for the reader once the pipe is full (64 KiB), so every thread of a
worker blocks in its request's log line and no hook is answered until the reader comes back
(serve26). Here the thread that logs formats its line (the request id, the redaction: as before,
where they were) and hands it to a writer thread, one per process, which writes lines to the stream
one at a time, in order. What is not written yet is held up to a budget (`log_buffer_bytes`); a line
beyond it is dropped, never waited for, and counted (`idds_crd_log_lines_dropped_total` in
/metrics, through `on_dropped_lines`), as is a line the stream refused (a closed pipe). What is
held is written when the process stops (`flush`, which logging's shutdown calls), waiting at most
`FLUSH_SECONDS` for a reader that does not come back.

A forked process (a gunicorn worker) gets a writer of its own and an empty buffer: the parent's
writer thread does not survive the fork, and the lines it still held are the parent's to write.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import threading
import time
import weakref
from collections.abc import Callable
from typing import TextIO

DEFAULT_BUFFER_BYTES = 4 * 1024 * 1024  # a stalled reader's ~30 s of a busy worker's lines (~350 B each)
FLUSH_SECONDS = 2.0  # at shutdown, how long the lines still held may wait for the reader

# The process's log is the process's own: its handlers (each given a new writer in a forked child) and
# who counts the lines they drop (the newest app's metrics), set as an app is built, never by a request.
_handlers: weakref.WeakSet[BufferedLogHandler] = weakref.WeakSet()
_drop_observers: list[Callable[[int], None]] = []


class BufferedLogHandler(logging.Handler):
    """Formats a record in the thread that logs it and hands the line to the process's writer thread;
    drops (and counts) it when `capacity` bytes are already waiting."""

    def __init__(self, stream: TextIO, capacity: int = DEFAULT_BUFFER_BYTES) -> None:
        super().__init__()
        self.stream = stream
        self.capacity = capacity
        self._start_writer()
        _handlers.add(self)

    def _start_writer(self) -> None:
        """An empty buffer and a thread writing it (at creation, and again in a forked child)."""
        # re-entrant: a signal handler that logs may run in a thread while it holds the lock (review27e)
        self._lock = threading.RLock()
        self._written = threading.Condition(self._lock)  # a line written, for a flush waiting on it
        self._lines: queue.SimpleQueue[tuple[str, int] | None] = queue.SimpleQueue()  # None: closed
        self._held = 0  # bytes of the lines not yet written (the one being written included)
        self._queued = 0  # lines handed over so far
        self._done = 0  # lines written (or refused by the stream) so far
        self._flushing = 0  # flushes waiting
        self._stopped = False
        self._given_up_at = -1  # lines written when a flush last gave up waiting
        self.dropped = 0
        self._writer = threading.Thread(target=self._write_lines, name="idds-crd-log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            size = len(line) if line.isascii() else len(line.encode("utf-8", "replace"))
            with self._lock:
                if self._stopped:
                    return
                # a line longer than the whole buffer is still written when nothing else waits (a long
                # traceback): the text held is at most the buffer or that one line
                kept = self._held == 0 or self._held + size <= self.capacity
                if kept:
                    self._held += size
                    self._queued += 1
                    self._lines.put((line, size))
                else:
                    self.dropped += 1
            if not kept:
                _observe_dropped(1)
        except Exception:
            self.handleError(record)

    def _write_lines(self) -> None:
        # signals are the main thread's: one the kernel gave this thread would not interrupt the main
        # thread's wait (the gunicorn master waits on its signal queue, a second at a time)
        signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        while (taken := self._lines.get()) is not None:
            line, size = taken
            try:
                self.stream.write(line)
                self.stream.flush()
                refused = False
            except Exception:  # a broken pipe, a closed stream: the writer goes on, the line counted
                refused = True
            with self._lock:
                self._held -= size
                self._done += 1
                self.dropped += refused
                if self._flushing:
                    self._written.notify_all()
            if refused:
                _observe_dropped(1)

    def flush(self, timeout: float = FLUSH_SECONDS) -> None:
        """Wait until the lines handed over so far are written, `timeout` seconds at most; not at all
        when a flush gave up before and no line has been written since (logging's shutdown flushes,
        then closes, which flushes again)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._queued
            self._flushing += 1
            try:
                while self._done < target and self._writer.is_alive() and self._done != self._given_up_at:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        self._given_up_at = self._done
                        return
                    self._written.wait(left)
            finally:
                self._flushing -= 1

    def setStream(self, stream: TextIO) -> TextIO | None:  # logging.StreamHandler's name
        """Write to `stream` from now on (what was handed over before, to the old one); the old stream,
        or None when it is `stream` already."""
        if stream is self.stream:
            return None
        self.flush()
        previous, self.stream = self.stream, stream
        return previous

    def close(self) -> None:
        """Write what is held (`flush`), then stop the writer; a line logged after is not written."""
        self.flush()
        with self._lock:
            if not self._stopped:
                self._stopped = True
                self._lines.put(None)
        _handlers.discard(self)
        super().close()


def on_dropped_lines(observer: Callable[[int], None] | None) -> None:
    """Tell `observer` how many lines are dropped, as they are (one app's metrics: the last app built
    in the process, under `serve` a worker's only one); at once, those dropped before it was told."""
    _drop_observers[:] = [] if observer is None else [observer]
    earlier = sum(handler.dropped for handler in list(_handlers))
    if observer is not None and earlier:
        observer(earlier)


def _observe_dropped(count: int) -> None:
    for observer in _drop_observers[:]:
        observer(count)


def _writers_after_fork() -> None:
    """In a forked child: each handler's own writer thread and an empty buffer."""
    for handler in list(_handlers):
        if not handler._stopped:
            handler._start_writer()


os.register_at_fork(after_in_child=_writers_after_fork)
