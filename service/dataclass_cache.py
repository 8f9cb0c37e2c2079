"""A private on-disk cache of the methods `@dataclass` writes, so a start-up does not compile them again.

Python's `dataclasses` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` (and a frozen
class's `__setattr__` and `__delattr__`) as source text and compiles it with `exec`. For the ~140
dataclasses that importing the service builds, that compiling was a fifth of a fresh interpreter's
import instructions (bench/NOTES.md). While `dataclass_code_cached()` is open, `dataclasses` runs that
text through `_exec`, which takes the code object an earlier start-up compiled from the same text out
of the cache file, and compiles (as `exec` would: no `__future__` flags inherited, file name
"<string>") only text it has not seen. The same text compiles to the same code, so a class built from
the cache is the class built without it. Outside the block `dataclasses` is left as it was.

The file lives in the catalog cache's directory (service/catalog_cache.py: `$IDDS_CRD_CATALOG_CACHE`,
`off` switching both off) and is trusted as the catalog's entries are, since loading code objects runs
them: the directory must be this user's own and nobody else's to write, as must the file, which
carries a checksum of its contents. Its name holds the interpreter's bytecode magic number and
optimisation level (code objects fit only the interpreter that made them). The directory is made
(private) when missing, as the catalog cache makes it, so the first start fills both caches; anything
wrong with the directory or the file (unusable, not private, corrupt) means compiling as usual: the
cache never stops start-up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import logging
import marshal
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any

from service.catalog_cache import _is_private, configured_directory, usable_directory

log = logging.getLogger(__name__)

_MAGIC = b"idds-crd dataclass code 1\n"
MOST_ENTRIES = 20_000  # beyond this, a write keeps only what the writing start-up used


def cache_file(directory: Path) -> Path:
    """The cache file for this interpreter in `directory`."""
    tag = importlib.util.MAGIC_NUMBER.hex()
    return directory / f"dataclass-code-{sys.implementation.cache_tag}-{tag}-O{sys.flags.optimize}.marshal"


class _Cache:
    """The code objects read from the file, those this start-up used, and those it compiled."""

    def __init__(self, stored: dict[str, CodeType]) -> None:
        self.stored = stored
        self.used: dict[str, CodeType] = {}
        self.compiled = 0

    def exec(self, source: Any, globals_: Any = None, locals_: Any = None) -> None:
        """`exec` as `dataclasses` calls it, the text compiled at most once across start-ups."""
        if not isinstance(source, str):
            exec(source, globals_, locals_)
            return
        code = self.used.get(source) or self.stored.get(source)
        if code is None:
            code = compile(source, "<string>", "exec", dont_inherit=True)
            self.compiled += 1
        self.used[source] = code
        exec(code, globals_, locals_)


def read_cache(path: Path) -> dict[str, CodeType]:
    """The code objects stored in `path`; none when it is missing, not private or not intact."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    try:
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode) or not _is_private(status):
                log.warning("dataclass code cache %s is not this user's private file: compiling", path.name)
                return {}
            content = file.read()
        checksum, payload = content[len(_MAGIC) : len(_MAGIC) + 32], memoryview(content)[len(_MAGIC) + 32 :]
        if not content.startswith(_MAGIC) or hashlib.sha256(payload).digest() != checksum:
            log.warning("dataclass code cache %s is corrupt: compiling", path.name)
            return {}
        stored = marshal.loads(payload)  # our own private file, checksum verified
    except Exception as exc:  # anything at all: a cache never stops start-up
        log.warning("dataclass code cache %s unreadable (%s): compiling", path.name, exc)
        return {}
    if not isinstance(stored, dict):
        return {}
    return {text: code for text, code in stored.items() if isinstance(code, CodeType)}


def _write(path: Path, cache: _Cache) -> None:
    entries = {**cache.stored, **cache.used}
    if len(entries) > MOST_ENTRIES:
        entries = cache.used
    try:
        payload = marshal.dumps(entries)
        descriptor, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=".dataclass-code-", suffix=".writing"
        )
    except Exception as exc:  # anything at all: a cache never stops start-up
        log.debug("dataclass code cache not written (%s)", exc)
        return
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(temporary, path)
    except OSError as exc:
        log.debug("dataclass code cache not written (%s)", exc)
        Path(temporary).unlink(missing_ok=True)


@contextmanager
def dataclass_code_cached() -> Iterator[None]:
    """Build the block's dataclasses with their methods' code from the cache (see the module's
    docstring); at its end, store what the block compiled. Nested blocks use the outer one's cache."""
    directory = configured_directory()
    if directory is None or "exec" in vars(dataclasses) or not usable_directory(directory):
        yield
        return
    path = cache_file(directory)
    cache = _Cache(read_cache(path))
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]  # read by dataclasses before builtins
    try:
        yield
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
        if cache.compiled:
            _write(path, cache)
