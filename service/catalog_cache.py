"""A private on-disk cache of the compiled catalog, so a worker starts without re-reading the policies.

Parsing, schema-checking and compiling every policy, value set and table costs a few hundred
milliseconds per worker, on every start. The compiled catalog (frozen dataclasses) is pickled under a
key that digests every file of the policy directory and where it is, the shipped JSON Schemas, the
service's own source code and version, and the Python and PyYAML versions: any edit makes a new key
(and two policy directories never share one), so a stale entry is never used, and a broken policy is
never cached, so it still stops start-up with its `file:line:` message. A catalog compiled on one day
is still good on a later one: what the compiler checks against the date (a payer's policy has a
version in force, service/succession.py) stays true once true.

Unpickling runs code named by the data, so the cache is trusted only as far as its files could only
have been written by this user: the directory must be the user's own, a real directory (not a link)
that nobody else may write, and each file must be the user's own regular file that nobody else may
write, carrying a checksum of its contents. Anything else, and any error at all while reading, means
"compile instead"; the cache is a speed-up, never a source of truth.

Where: `$IDDS_CRD_CATALOG_CACHE` if set (`off` disables the cache), else `$XDG_CACHE_HOME/idds-crd`,
else `~/.cache/idds-crd`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import policies
import service
from service.version import service_version
from service.yamlsource import read_bytes

CACHE_ENV_VAR = "IDDS_CRD_CATALOG_CACHE"
DISABLED = "off"
KEPT_ENTRIES = 8  # a few policy directories or versions side by side; older entries are deleted
_MAGIC = b"idds-crd compiled catalog 1\n"
_SUFFIX = ".catalog"
_IGNORED_DIRECTORIES = {"__pycache__"}
_UNSAFE_MODE_BITS = stat.S_IWGRP | stat.S_IWOTH

Compiled = TypeVar("Compiled")
log = logging.getLogger(__name__)


def configured_directory() -> Path | None:
    """The cache directory the environment asks for, or None when the cache is switched off."""
    chosen = os.environ.get(CACHE_ENV_VAR)
    if chosen is not None:
        return None if chosen.strip().lower() in {DISABLED, ""} else Path(chosen).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no home directory to be found: no cache
            return None
    return Path(base) / "idds-crd"


def _files(root: Path) -> Iterable[Path]:
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if d not in _IGNORED_DIRECTORIES)
        for name in sorted(names):
            yield Path(folder) / name


def _digest_tree(digest: hashlib._Hash, label: str, root: Path, suffix: str = "") -> None:
    for path in _files(root):
        if path.name.endswith(suffix):
            name = f"{label}/{path.relative_to(root).as_posix()}"
            digest.update(f"\0{name}\0".encode())
            digest.update(read_bytes(path, name))  # unreadable: the one-line error of a broken file


def _yaml_build() -> tuple[str, bool]:
    """PyYAML's version and whether its libyaml extension is installed, read without importing
    PyYAML (15 ms a worker whose catalog comes from the cache need not spend)."""
    spec = importlib.util.find_spec("yaml")
    folders = spec.submodule_search_locations if spec is not None else None
    extension_suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    with_libyaml = any(
        name.startswith("_yaml.") and name.endswith(extension_suffixes)
        for folder in folders or ()
        for name in os.listdir(folder)
    )
    return importlib.metadata.version("PyYAML"), with_libyaml


def rules_key(root: Path) -> str:
    """A digest of the rules the catalog of `root` holds: its files, the schemas and the code that
    compile them, wherever the folder is."""
    digest = hashlib.sha256()
    versions = (service_version(), sys.version, *_yaml_build())
    digest.update(repr(versions).encode())
    _digest_tree(digest, "policies", root)
    _digest_tree(digest, "schema", policies.directory() / "schema")
    _digest_tree(digest, "service", Path(service.__file__).parent, ".py")
    return digest.hexdigest()


def catalog_key(root: Path) -> str:
    """A digest of everything the compiled catalog of `root` depends on: its rules and the folder
    itself (a catalog reads its policies' source documents there), so two folders never share an entry."""
    folder = str(root.resolve()).encode("utf-8", "surrogateescape")
    return hashlib.sha256(rules_key(root).encode() + b"\0folder\0" + folder).hexdigest()


def _is_private(status: os.stat_result) -> bool:
    return status.st_uid == os.geteuid() and not status.st_mode & _UNSAFE_MODE_BITS


def usable_directory(
    directory: Path, cache: str = "catalog cache", instead: str = "compiling the policies"
) -> bool:
    """Create the cache directory (mode 0700) if missing; True only if it is safe to trust. A warning
    names the `cache` that will not be used and what is done `instead`."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        status = directory.lstat()
    except OSError as exc:
        log.warning("%s %s unusable (%s): %s", cache, directory, exc, instead)
        return False
    if not stat.S_ISDIR(status.st_mode) or not _is_private(status):
        log.warning(
            "%s %s is not a private directory of this user (owner and mode): not used", cache, directory
        )
        return False
    return True


def _read(path: Path, key: str, expected: type[Compiled]) -> Compiled | None:
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("catalog cache entry %s unreadable (%s): compiling", path.name, exc)
        return None
    try:
        with os.fdopen(descriptor, "rb") as file:
            status = os.fstat(file.fileno())
            if not stat.S_ISREG(status.st_mode) or not _is_private(status):
                log.warning("catalog cache entry %s is not a private file of this user: compiling", path.name)
                return None
            content = file.read()
        checksum, payload = content[len(_MAGIC) : len(_MAGIC) + 32], content[len(_MAGIC) + 32 :]
        if not content.startswith(_MAGIC) or hashlib.sha256(payload).digest() != checksum:
            log.warning("catalog cache entry %s is corrupt: compiling", path.name)
            return None
        stored_key, value = pickle.loads(payload)  # our own private file, checksum verified
    except Exception as exc:  # anything at all: a cache never stops start-up
        log.warning("catalog cache entry %s unreadable (%s): compiling", path.name, exc)
        return None
    if stored_key != key or not isinstance(value, expected):
        log.warning("catalog cache entry %s holds something else: compiling", path.name)
        return None
    return value


def _write(directory: Path, path: Path, key: str, value: object) -> None:
    try:
        payload = pickle.dumps((key, value), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a catalog that cannot be pickled is served all the same
        log.warning("compiled catalog not cacheable (%s)", exc)
        return
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".writing-", suffix=_SUFFIX)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(_MAGIC + hashlib.sha256(payload).digest() + payload)
        os.replace(temporary, path)
    except OSError as exc:
        log.warning("catalog cache entry %s not written (%s)", path.name, exc)
        Path(temporary).unlink(missing_ok=True)


def _prune(directory: Path) -> None:
    """Delete all but the KEPT_ENTRIES most recently used entries."""
    try:
        entries = sorted(directory.glob(f"*{_SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
        for stale in entries[KEPT_ENTRIES:]:
            stale.unlink(missing_ok=True)
    except OSError as exc:
        log.debug("catalog cache not pruned (%s)", exc)


def load_or_compile(
    root: Path,
    compile_catalog: Callable[[Path], Compiled],
    expected: type[Compiled],
    directory: Path,
    day: str = "",
) -> Compiled:
    """The compiled catalog of `root`: from the cache in `directory` if a valid entry is there, else
    compiled (errors propagate unchanged) and stored for the next start. `day`: the date the compile
    checks against (every payer has a policy version in force on it), part of the entry's key, so a
    start on another day (or in another time zone's day) checks again."""
    if not usable_directory(directory):
        return compile_catalog(root)
    key = catalog_key(root)
    if day:
        key = hashlib.sha256(f"{key}\0day\0{day}".encode()).hexdigest()
    path = directory / f"{key}{_SUFFIX}"
    cached = _read(path, key, expected)
    if cached is not None:
        log.debug("catalog from cache %s", path)
        with contextlib.suppress(OSError):
            os.utime(path)  # recently used: kept by _prune
        return cached
    compiled = compile_catalog(root)
    _write(directory, path, key, compiled)
    _prune(directory)
    return compiled
