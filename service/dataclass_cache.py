"""A private on-disk cache of the methods `@dataclass` writes, so a start-up does not compile them again.

Python's `dataclasses` writes each class's `__init__`, `__repr__`, `__eq__`, `__hash__` (and a frozen
class's `__setattr__` and `__delattr__`) as source text and compiles it with `exec`. For the ~140
dataclasses that importing the service builds, that compiling was a fifth of a fresh interpreter's
import instructions (bench/NOTES.md). While `dataclass_code_cached()` is open, `dataclasses` runs that
text through `_exec`, which takes the code object an earlier start-up compiled from the same text out
of the cache file, and compiles (as `exec` would: no `__future__` flags inherited, file name
"<string>") only text it has not seen. The same text compiles to the same code, so a class built from
the cache is the class built without it. Outside the block `dataclasses` is left as it was.

Regular expressions are the same story: the ~230 patterns the imported modules compile at import time
(the standard library's, Werkzeug's, SQLAlchemy's, urllib3's, the service's own) were parsed and
compiled by `re`'s pure-Python compiler at every start, about a seventh of the imports' CPU. While the
block is open, `re`'s compiler is `_Cache.regex`: for a pattern an earlier start compiled it calls
`_sre.compile` with the very arguments `re`'s compiler passed it then (its program, groups and group
names: the same arguments make the same pattern object); others are compiled as usual and their
arguments kept. A pattern whose parsing warns (a possible nested set, a group name `re` deprecates) is
never kept, so its warning is given at every start as before. The file keeps the patterns the last
start-up that wrote it used (some patterns differ between start-ups: see `_Cache.worth_writing`).

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
import re
import stat
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import CodeType
from typing import Any

from service.catalog_cache import _is_private, configured_directory, usable_directory

log = logging.getLogger(__name__)

_MAGIC = b"idds-crd dataclass code 2\n"
MOST_ENTRIES = 20_000  # beyond this, a write keeps only what the writing start-up used
FEW_PATTERNS = 4  # a start-up compiling no more patterns than this (and no method) writes nothing


_REGEX = "re"  # first item of a regular expression's key: (_REGEX, pattern, flags)
_compile_regex = re._compiler.compile  # type: ignore[attr-defined]
Entry = CodeType | tuple[Any, ...]  # a method's code, or the arguments `_sre.compile` took for a pattern


def cache_file(directory: Path) -> Path:
    """The cache file for this interpreter in `directory` (regular expression programs may differ
    between patch releases: the whole version names it)."""
    tag = importlib.util.MAGIC_NUMBER.hex()
    build = hashlib.sha256(f"{sys.version}\0{re._constants.MAGIC}".encode()).hexdigest()[:12]  # type: ignore[attr-defined]
    name = f"dataclass-code-{sys.implementation.cache_tag}-{tag}-{build}-O{sys.flags.optimize}.marshal"
    return directory / name


class _RecordingSre:
    """`_sre` as `re`'s compiler sees it while one pattern is compiled: the arguments and result of
    its `compile` are kept."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.made: tuple[tuple[Any, ...], Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def compile(self, *arguments: Any) -> Any:
        made = self._real.compile(*arguments)
        self.made = (arguments, made)
        return made


def _plain(arguments: tuple[Any, ...]) -> tuple[Any, ...]:
    """`_sre.compile`'s arguments as marshal writes them: `re`'s opcodes are int subclasses."""
    pattern, flags, code, groups, groupindex, indexgroup = arguments
    return (
        pattern,
        int(flags),
        [int(word) for word in code],
        int(groups),
        dict(groupindex),
        tuple(indexgroup),
    )


def _warns(pattern: str | bytes, flags: int) -> bool:
    """Whether parsing `pattern` gives a warning (which a pattern from the cache would not give)."""
    with warnings.catch_warnings(record=True) as given:
        warnings.simplefilter("always")
        try:
            re._parser.parse(pattern, flags)  # type: ignore[attr-defined]
        except Exception:
            return True
    return bool(given)


class _Cache:
    """The entries read from the file, those this start-up used, and how many it compiled."""

    def __init__(self, stored: dict[Any, Entry]) -> None:
        self.stored = stored
        self.used: dict[Any, Entry] = {}
        self.compiled = 0
        self.regexes: list[tuple[Any, ...]] = []  # the keys of the patterns this start-up compiled

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

    def regex(self, pattern: Any, flags: int = 0) -> Any:
        """`re._compiler.compile`, a pattern's program computed at most once across start-ups."""
        if not isinstance(pattern, str | bytes) or flags & re.DEBUG:
            return _compile_regex(pattern, flags)
        key = (_REGEX, pattern, flags)
        arguments = self.used.get(key) or self.stored.get(key)
        if isinstance(arguments, tuple):
            try:
                made = re._compiler._sre.compile(*arguments)  # type: ignore[attr-defined]
            except (RuntimeError, TypeError, ValueError, OverflowError):
                made = None  # a program this `_sre` refuses (another build's): compiled as usual below
            if made is not None:
                self.used[key] = arguments
                return made
            del self.stored[key]  # only a stored entry can be one `_sre` refuses
        compiler = re._compiler  # type: ignore[attr-defined]
        real_sre = compiler._sre
        recording = compiler._sre = _RecordingSre(real_sre)
        try:
            made = _compile_regex(pattern, flags)
        finally:
            compiler._sre = real_sre
        if recording.made is not None and recording.made[1] is made and recording.made[0][0] == pattern:
            self.used[key] = _plain(recording.made[0])
            self.regexes.append(key)
        return made

    def kept(self) -> dict[Any, Entry]:
        """What to write: the methods' code stored and used; the patterns this start-up used, less
        those it compiled whose parsing warns."""
        code = {key: entry for key, entry in {**self.stored, **self.used}.items() if isinstance(key, str)}
        if len(code) > MOST_ENTRIES:
            code = {key: entry for key, entry in self.used.items() if isinstance(key, str)}
        patterns = {key: entry for key, entry in self.used.items() if not isinstance(key, str)}
        for key in self.regexes:
            if _warns(key[1], key[2]):
                del patterns[key]
        return {**code, **patterns}

    def worth_writing(self) -> bool:
        """Whether this start-up compiled what the next would otherwise compile again: a method, or
        more than a few patterns (a few differ at every start: PyJWT joins a set's items into one,
        in the order of the start's hash seed; rewriting the file for them would cost more)."""
        return self.compiled > 0 or len(self.regexes) > FEW_PATTERNS


def read_cache(path: Path) -> dict[Any, Entry]:
    """The entries stored in `path`; none when it is missing, not private or not intact."""
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
    return {
        key: entry
        for key, entry in stored.items()
        if (isinstance(key, str) and isinstance(entry, CodeType))
        or (isinstance(key, tuple) and key[:1] == (_REGEX,) and isinstance(entry, tuple))
    }


def _write(path: Path, cache: _Cache) -> None:
    try:
        payload = marshal.dumps(cache.kept())
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
    if (
        directory is None
        or "exec" in vars(dataclasses)
        or not usable_directory(directory, "dataclass code cache", "the dataclasses' code compiled")
    ):
        yield
        return
    path = cache_file(directory)
    cache = _Cache(read_cache(path))
    dataclasses.exec = cache.exec  # type: ignore[attr-defined]  # read by dataclasses before builtins
    compiler = re._compiler  # type: ignore[attr-defined]
    regex_compile, compiler.compile = compiler.compile, cache.regex  # read by re._compile at each call
    try:
        yield
    finally:
        del dataclasses.exec  # type: ignore[attr-defined]
        compiler.compile = regex_compile
        if cache.worth_writing():
            _write(path, cache)
