"""The cache of the code `@dataclass` generates (service/dataclass_cache.py): a start-up after the first
compiles none of it, the classes are those built without the cache, and a cache that is not this
user's private, intact file is not used."""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from service import dataclass_cache
from service.dataclass_cache import cache_file, dataclass_code_cached, read_cache

ROOT = Path(__file__).resolve().parents[2]


def _point(cls: type) -> Any:
    return dataclasses.dataclass(frozen=True)(cls)


def _make() -> type:
    class Point:
        """A point."""

        x: int
        y: int = 0

    return _point(Point)


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    monkeypatch.setenv("IDDS_CRD_CATALOG_CACHE", str(directory))
    return directory


def _no_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("compiled although the cache holds the code")

    monkeypatch.setattr(dataclass_cache, "compile", refuse, raising=False)


def test_a_second_start_compiles_nothing_and_builds_the_same_class(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with dataclass_code_cached():
        first = _make()
    assert len(read_cache(cache_file(cache_dir))) >= 5  # __init__, __repr__, __eq__, __hash__, ...
    _no_compiling(monkeypatch)
    with dataclass_code_cached():
        cached = _make()
    monkeypatch.undo()
    plain = _make()
    for method in ("__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__"):
        assert getattr(cached, method).__code__ == getattr(plain, method).__code__, method
        assert getattr(first, method).__code__ == getattr(plain, method).__code__, method
    point = cached(1)
    assert (repr(point), point, hash(point)) == ("_make.<locals>.Point(x=1, y=0)", cached(1, 0), hash((1, 0)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 2  # type: ignore[misc]
    assert "exec" not in vars(dataclasses)  # outside the block dataclasses is as it was


def test_a_directory_others_may_write_or_the_cache_off_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("IDDS_CRD_CATALOG_CACHE", str(shared))
    with dataclass_code_cached():
        assert "exec" not in vars(dataclasses)
        _make()
    assert list(shared.iterdir()) == []
    monkeypatch.setenv("IDDS_CRD_CATALOG_CACHE", "off")
    with dataclass_code_cached():
        assert "exec" not in vars(dataclasses)


def test_an_unusable_directory_is_named_as_the_dataclass_code_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning names this cache, not the catalog's (which warns about the same folder itself)."""
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("IDDS_CRD_CATALOG_CACHE", str(blocked / "cache"))
    with caplog.at_level("WARNING"), dataclass_code_cached():
        _make()
    [warning] = [r.getMessage() for r in caplog.records]
    assert warning.startswith("dataclass code cache ") and "catalog" not in warning, warning


def test_the_first_start_makes_the_directory_and_fills_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "none-yet"
    monkeypatch.setenv("IDDS_CRD_CATALOG_CACHE", str(missing))
    with dataclass_code_cached():
        _make()
    assert missing.stat().st_mode & 0o777 == 0o700
    assert read_cache(cache_file(missing))


def test_a_file_others_may_write_is_not_used(cache_dir: Path) -> None:
    with dataclass_code_cached():
        _make()
    path = cache_file(cache_dir)
    assert read_cache(path)
    path.chmod(0o666)
    assert read_cache(path) == {}


def test_a_corrupt_file_is_compiled_again_and_replaced(cache_dir: Path) -> None:
    with dataclass_code_cached():
        _make()
    path = cache_file(cache_dir)
    content = bytearray(path.read_bytes())
    content[-10] ^= 0xFF
    path.write_bytes(bytes(content))
    assert read_cache(path) == {}
    with dataclass_code_cached():
        assert _make()(3).x == 3
    assert read_cache(path)


def test_importing_the_app_fills_the_cache_and_the_next_start_reads_it(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    environment = {**os.environ, "IDDS_CRD_CATALOG_CACHE": str(directory), "PYTHONPATH": str(ROOT)}
    child = (
        "import service.dataclass_cache as d\n"
        "compiled = []\n"
        "original = d._Cache.exec\n"
        "def counting(self, source, *rest):\n"
        "    before = self.compiled\n"
        "    original(self, source, *rest)\n"
        "    compiled.append(self.compiled - before)\n"
        "d._Cache.exec = counting\n"
        "patterns = []\n"
        "worth = d._Cache.worth_writing\n"
        "def counted(self):\n"
        "    patterns.append(len(self.regexes))\n"
        "    return worth(self)\n"
        "d._Cache.worth_writing = counted\n"
        "import service.app\n"
        "print(len(compiled), sum(compiled), *patterns)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", child], env=environment, capture_output=True, text=True, check=True
        )
        for _ in range(2)
    ]
    (built_first, compiled_first, patterns_first), (built_next, compiled_next, patterns_next) = (
        map(int, r.stdout.split()) for r in runs
    )
    assert built_first == built_next > 300  # the methods of the service's dataclasses
    assert compiled_first > 300
    assert compiled_next == 0
    assert patterns_first > 150  # the regular expressions the imported modules compile
    assert patterns_next <= dataclass_cache.FEW_PATTERNS


def test_a_cache_that_cannot_be_written_never_stops_start_up(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(_value: object) -> bytes:
        raise ValueError("unmarshallable")

    monkeypatch.setattr(dataclass_cache.marshal, "dumps", refuse)
    with dataclass_code_cached():
        assert _make()(4).x == 4
    assert read_cache(cache_file(cache_dir)) == {}


PATTERN = r"(?P<word>[a-z]+)-(?P<number>\d{2,4})(?:x|y)?$"


def _fresh_pattern(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """The pattern compiled now, not taken from `re`'s own per-process cache."""
    re.purge()
    return re.compile(pattern, flags)


def test_a_second_start_compiles_no_pattern_and_gets_the_same_one(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with dataclass_code_cached():
        for n in range(dataclass_cache.FEW_PATTERNS + 1):  # enough to be written
            _fresh_pattern(f"{PATTERN}{n}")
        first = _fresh_pattern(PATTERN, re.IGNORECASE)
    assert ("re", PATTERN, re.IGNORECASE.value) in read_cache(cache_file(cache_dir))

    real = dataclass_cache._compile_regex

    def refuse(pattern: Any, flags: int = 0) -> Any:
        if pattern == PATTERN:
            raise AssertionError("a pattern compiled although the cache holds it")
        return real(pattern, flags)

    monkeypatch.setattr(dataclass_cache, "_compile_regex", refuse)
    with dataclass_code_cached():
        cached = _fresh_pattern(PATTERN, re.IGNORECASE)
    monkeypatch.undo()
    plain = _fresh_pattern(PATTERN, re.IGNORECASE)
    assert re._compiler.compile is dataclass_cache._compile_regex  # type: ignore[attr-defined]
    for made in (first, cached):
        assert (made.pattern, made.flags, made.groups, made.groupindex) == (
            plain.pattern,
            plain.flags,
            plain.groups,
            plain.groupindex,
        )
        for text in ("Abc-123x", "abc-12", "abc-1", "abc-12345", "ABC-1234y", "a-99z"):
            found, expected = made.match(text), plain.match(text)
            assert (found and found.groupdict()) == (expected and expected.groupdict()), text


def test_a_stored_program_sre_refuses_is_compiled_as_usual_and_replaced(cache_dir: Path) -> None:
    """review22c L3: a file with a good checksum holding a program `_sre` refuses (another build's under
    the same name, a bit flipped before the checksum) stopped start-up with "invalid SRE code"."""
    with dataclass_code_cached():
        for n in range(dataclass_cache.FEW_PATTERNS + 1):
            _fresh_pattern(f"{PATTERN}{n}")
    path = cache_file(cache_dir)
    entries = read_cache(path)
    key = ("re", f"{PATTERN}0", 0)
    good = entries[key]
    entries[key] = (good[0], good[1], [999, 1, 2], *good[3:])
    payload = marshal.dumps(entries)
    path.write_bytes(dataclass_cache._MAGIC + hashlib.sha256(payload).digest() + payload)
    with dataclass_code_cached():
        made = _fresh_pattern(f"{PATTERN}0")
        for n in range(1, dataclass_cache.FEW_PATTERNS + 2):
            _fresh_pattern(f"{PATTERN}x{n}")  # enough new ones for the file to be written again
    assert (made.pattern, made.groups, made.groupindex) == (f"{PATTERN}0", 2, {"word": 1, "number": 2})
    assert read_cache(path)[key] == good


def test_a_pattern_whose_parsing_warns_is_not_kept_and_still_warns(cache_dir: Path) -> None:
    nested = "[[a]b]"  # FutureWarning: possible nested set
    with dataclass_code_cached():
        for n in range(dataclass_cache.FEW_PATTERNS + 1):
            _fresh_pattern(f"{PATTERN}{n}")
        with pytest.warns(FutureWarning):
            _fresh_pattern(nested)
    stored = read_cache(cache_file(cache_dir))
    assert ("re", nested, 0) not in stored and ("re", f"{PATTERN}0", 0) in stored
    with dataclass_code_cached(), pytest.warns(FutureWarning):
        _fresh_pattern(nested)


def test_a_few_new_patterns_alone_do_not_rewrite_the_file(cache_dir: Path) -> None:
    with dataclass_code_cached():
        _make()
    written = cache_file(cache_dir).stat().st_mtime_ns
    with dataclass_code_cached():
        for n in range(dataclass_cache.FEW_PATTERNS):
            _fresh_pattern(f"{PATTERN}-few-{n}")
    assert cache_file(cache_dir).stat().st_mtime_ns == written
