"""The compiled-catalog cache: used when its files are unchanged, rebuilt when any changes, and never
trusted when it is corrupt or lives where someone else could have written it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from service import catalog_cache
from service.catalog import Catalog, cached_catalog, compile_catalog
from tests.catalog_support import copy_policies


class CountingCompiler:
    """The real compiler, counting how often the cache had to fall back to it."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, root: Path) -> Catalog:
        self.calls += 1
        return compile_catalog(root)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return copy_policies(tmp_path)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def load(root: Path, cache: Path, compiler: CountingCompiler) -> Catalog:
    return catalog_cache.load_or_compile(root, compiler, Catalog, cache)


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.catalog"))


def assert_same_catalog(cached: Catalog, compiled: Catalog) -> None:
    assert cached.policies == compiled.policies
    assert cached.order_codes == compiled.order_codes
    assert cached.payers == compiled.payers
    assert cached.assessments == compiled.assessments
    assert cached.vocabulary == compiled.vocabulary
    assert cached.terminology.ids() == compiled.terminology.ids()
    for value_set in compiled.terminology.ids():
        assert cached.terminology[value_set] == compiled.terminology[value_set]
    assert cached.terminology.all_ingredients() == compiled.terminology.all_ingredients()
    assert cached.terminology.assessment_codes == compiled.terminology.assessment_codes


def test_a_miss_compiles_and_stores_then_a_hit_does_not_compile(root: Path, cache: Path) -> None:
    compiler = CountingCompiler()
    first = load(root, cache, compiler)
    assert compiler.calls == 1 and len(entries(cache)) == 1
    second = load(root, cache, compiler)
    assert compiler.calls == 1
    assert second is not first
    assert_same_catalog(second, first)


def test_the_cache_directory_and_its_entries_are_private(root: Path, cache: Path) -> None:
    load(root, cache, CountingCompiler())
    assert cache.stat().st_mode & 0o777 == 0o700
    assert entries(cache)[0].stat().st_mode & 0o777 == 0o600
    assert not list(cache.glob(".writing-*"))


def test_editing_a_policy_invalidates_the_entry(root: Path, cache: Path) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    path = root / "geha.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    raw["title"] = "An edited title"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    edited = load(root, cache, compiler)
    assert compiler.calls == 2
    assert edited.policies["geha-idds-chronic-pain"].title == "An edited title"
    assert len(entries(cache)) == 2
    assert load(root, cache, compiler).policies["geha-idds-chronic-pain"].title == "An edited title"
    assert compiler.calls == 2


def test_adding_a_value_set_file_invalidates_the_entry(root: Path, cache: Path) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    (root / "valuesets" / "zz-extra.yaml").write_text(
        "id: zz-extra\ntitle: An extra set\nreference: test\nsnomed: ['123456']\n", encoding="utf-8"
    )
    assert "zz-extra" in load(root, cache, compiler).terminology
    assert compiler.calls == 2


def test_the_key_covers_policy_data_schemas_and_service_code(root: Path) -> None:
    before = catalog_cache.catalog_key(root)
    assert catalog_cache.catalog_key(root) == before
    (root / "notes" / "geha.md").write_text("edited\n", encoding="utf-8")
    assert catalog_cache.catalog_key(root) != before


def corrupt_by_flipping_a_payload_byte(entry: Path) -> None:
    content = bytearray(entry.read_bytes())
    content[-40] ^= 0x01
    entry.write_bytes(bytes(content))


def corrupt_by_truncating(entry: Path) -> None:
    entry.write_bytes(entry.read_bytes()[:1000])


def corrupt_with_a_valid_checksum_over_garbage(entry: Path) -> None:
    import hashlib

    payload = b"not a pickle at all"
    magic = entry.read_bytes()[: len(catalog_cache._MAGIC)]
    entry.write_bytes(magic + hashlib.sha256(payload).digest() + payload)


def corrupt_by_emptying(entry: Path) -> None:
    entry.write_bytes(b"")


@pytest.mark.parametrize(
    "corrupt",
    [
        corrupt_by_flipping_a_payload_byte,
        corrupt_by_truncating,
        corrupt_with_a_valid_checksum_over_garbage,
        corrupt_by_emptying,
    ],
)
def test_a_corrupt_entry_falls_back_to_compiling_and_is_replaced(root: Path, cache: Path, corrupt) -> None:  # type: ignore[no-untyped-def]
    compiler = CountingCompiler()
    compiled = load(root, cache, compiler)
    corrupt(entries(cache)[0])
    recovered = load(root, cache, compiler)
    assert compiler.calls == 2
    assert_same_catalog(recovered, compiled)
    load(root, cache, compiler)
    assert compiler.calls == 2, "the corrupt entry was rewritten"


def test_an_entry_holding_another_key_is_not_used(root: Path, cache: Path, tmp_path: Path) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    other = copy_policies(tmp_path / "other")
    (other / "notes" / "geha.md").write_text("different\n", encoding="utf-8")
    (cache / f"{catalog_cache.catalog_key(other)}.catalog").write_bytes(entries(cache)[0].read_bytes())
    load(other, cache, compiler)
    assert compiler.calls == 2


@pytest.mark.parametrize("mode", [0o720, 0o702])
def test_a_directory_others_may_write_is_not_used(root: Path, cache: Path, mode: int) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    cache.chmod(mode)
    load(root, cache, compiler)
    assert compiler.calls == 2
    assert len(entries(cache)) == 1, "nothing written there either"
    assert not catalog_cache.usable_directory(cache)


@pytest.mark.parametrize("mode", [0o620, 0o602])
def test_an_entry_others_may_write_is_not_used(root: Path, cache: Path, mode: int) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    entries(cache)[0].chmod(mode)
    load(root, cache, compiler)
    assert compiler.calls == 2


def test_a_symbolic_link_is_not_used_as_the_directory_or_an_entry(
    root: Path, cache: Path, tmp_path: Path
) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    linked = tmp_path / "linked-cache"
    linked.symlink_to(cache, target_is_directory=True)
    load(root, linked, compiler)
    assert compiler.calls == 2
    entry = entries(cache)[0]
    moved = entry.rename(tmp_path / "elsewhere.catalog")
    entry.symlink_to(moved)
    load(root, cache, compiler)
    assert compiler.calls == 3


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another user needs root")
def test_a_directory_of_another_user_is_not_used(root: Path, cache: Path) -> None:
    compiler = CountingCompiler()
    load(root, cache, compiler)
    os.chown(cache, 65534, 65534)
    load(root, cache, compiler)
    assert compiler.calls == 2


def test_an_unwritable_location_still_serves_a_compiled_catalog(root: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n", encoding="utf-8")
    compiler = CountingCompiler()
    assert "geha-idds-chronic-pain" in load(root, blocker / "cache", compiler).policies
    assert compiler.calls == 1


def test_old_entries_are_pruned(root: Path, cache: Path) -> None:
    cache.mkdir(mode=0o700)
    for index in range(catalog_cache.KEPT_ENTRIES + 3):
        stale = cache / f"{index:064x}.catalog"
        stale.write_bytes(b"old")
        os.utime(stale, (1_000_000 + index, 1_000_000 + index))
    load(root, cache, CountingCompiler())
    kept = entries(cache)
    assert len(kept) == catalog_cache.KEPT_ENTRIES
    assert cache / f"{0:064x}.catalog" not in kept


def test_cached_catalog_without_a_directory_always_compiles(root: Path) -> None:
    assert_same_catalog(cached_catalog(root, None), compile_catalog(root))


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"IDDS_CRD_CATALOG_CACHE": "off"}, None),
        ({"IDDS_CRD_CATALOG_CACHE": ""}, None),
        ({"IDDS_CRD_CATALOG_CACHE": "/srv/idds-crd/cache"}, Path("/srv/idds-crd/cache")),
        ({"XDG_CACHE_HOME": "/home/u/.xdg-cache"}, Path("/home/u/.xdg-cache/idds-crd")),
        ({"HOME": "/home/u"}, Path("/home/u/.cache/idds-crd")),
    ],
)
def test_the_cache_location_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: Path | None
) -> None:
    for name in ("IDDS_CRD_CATALOG_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert catalog_cache.configured_directory() == expected
