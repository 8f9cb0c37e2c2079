"""Whether a compiled pattern has a shape that makes Python's backtracking `re` read a run of characters once
per position in it (quadratic, or worse), told from the pattern's parsed form, never by timing it: a test
that times a pattern flakes on a loaded machine, and passes on a fast one however slow the shape (the project
keeps timing to bench/). review31e: `_as_whole_text` trimmed a route's text with `re.sub` of
`^[\\s-]+|[\\s-]+$`, whose second branch, searched for, read a run of spaces to its end from each position of
it (100 KB took 53 s); route32's and review32c's CPU-time tests timed such shapes. `backtracking` names each
shape of the three kinds below, so a test asserts a pattern has none.

1. Searched for (`search`, `sub`, `finditer`, ...: tried at every position): an unbounded repeat whose
   characters may start a match (the pattern's first characters, but an alternative anchored with `^`), and
   after which the match may still fail: from each position of a run of them the repeat reads the run to
   its end, then gives back one character at a time ("[\\s-]+$", "\\s*\\)").
2. Two unbounded repeats one after the other (what lies between may match nothing) that may read the same
   character, the match able to fail after them: each split of a run between them is tried ("\\s*\\s*x").
3. An unbounded repeat of something holding an unbounded repeat, whose iterations may meet on a character
   either side reads ("(\\s+)*x", "(?:a+b?)+c"): each way of cutting a run into iterations is tried.

A repeat after which nothing can fail (the rest of the pattern may match nothing, with no assertion) is
never given back: "\\w+(?:[.'-]\\w+)*\\.?" is linear. Possessive repeats and atomic groups give nothing back,
so shapes 2 and 3 do not count them; shape 1 does (a search begun again at each position of a run reads it
to its end each time, given back or not: `[\\s-]++$`, and the redaction's `[a-z][a-z0-9+.-]*+://` without
its look-behind, review24b R2), unless the pattern begins with a look-behind refusing each character the
repeat reads (`(?<![a-z0-9+.-])`): a match then starts only where a run of them begins; or unless what
must come before the repeat reads a character the run does not hold (`://` before a URL's user, whose run
holds no `/`): a match begun inside the run leaves it before the repeat. Character classes are compared on
a sample of characters (every code point below U+3000 and those the patterns name), which holds all the
project's patterns read."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from types import ModuleType
from typing import Any

_REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
_ANCHORS = (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING)
_ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)
_SAMPLE_BELOW = 0x3000
# which patterns are searched for (tried at every position) and which matched at one
SEARCHING = frozenset({"search", "sub", "subn", "finditer", "findall", "split"})
MATCHING = frozenset({"match", "fullmatch"})


@dataclass(frozen=True)
class _Repeat:
    """An unbounded repeat met in a pattern, and whether what follows it may still fail."""

    item: tuple[Any, Any]
    flags: int
    then_may_fail: bool


@cache
def _category(name: Any) -> frozenset[str]:
    probe = re.compile({sre.CATEGORY_DIGIT: r"\d", sre.CATEGORY_SPACE: r"\s", sre.CATEGORY_WORD: r"\w"}[name])
    return frozenset(c for c in map(chr, range(_SAMPLE_BELOW)) if probe.fullmatch(c))


def _sample(extra: frozenset[str]) -> frozenset[str]:
    return frozenset(map(chr, range(_SAMPLE_BELOW))) | extra


def _class(items: list[tuple[Any, Any]], sample: frozenset[str]) -> frozenset[str]:
    chars: set[str] = set()
    negate = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            chars.add(chr(av))
        elif op is sre.RANGE:
            chars |= {c for c in sample if av[0] <= ord(c) <= av[1]}
        elif op is sre.CATEGORY:
            base = str(av).replace("NOT_", "")
            name = {str(k): k for k in (sre.CATEGORY_DIGIT, sre.CATEGORY_SPACE, sre.CATEGORY_WORD)}[base]
            found = _category(name)
            chars |= (sample - found) if "NOT_" in str(av) else found
        else:
            raise ValueError(f"a class item this check does not read: {op}")
    return frozenset(sample - chars) if negate else frozenset(chars)


def _cased(chars: frozenset[str], flags: int) -> frozenset[str]:
    if not flags & re.IGNORECASE:
        return chars
    return chars | {c.lower() for c in chars} | {c.upper() for c in chars if len(c.upper()) == 1}


class _Reader:
    """The parsed pattern read for the three shapes (module docstring)."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.flags = pattern.flags
        self.parsed = _parser.parse(pattern.pattern, pattern.flags)
        named = set(re.findall(r"(?<!\\)[^\\]", pattern.pattern))
        self.sample = _sample(frozenset(named))
        self.found: list[str] = []

    # what a part may match nothing, may fail, and which characters it may start and end with
    def nullable(self, seq: list[tuple[Any, Any]]) -> bool:
        return all(self._item_nullable(item) for item in seq)

    def _item_nullable(self, item: tuple[Any, Any]) -> bool:
        op, av = item
        if op in _ZERO_WIDTH:
            return True
        if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
            return av[0] == 0 or self.nullable(av[2])
        if op is sre.SUBPATTERN:
            return self.nullable(av[3])
        if op is sre.ATOMIC_GROUP:
            return self.nullable(av)
        if op is sre.BRANCH:
            return any(self.nullable(alt) for alt in av[1])
        return op is sre.GROUPREF_EXISTS  # not a character, a class, a back reference

    def cannot_fail(self, seq: list[tuple[Any, Any]]) -> bool:
        """Whether `seq` matches nothing wherever it stands: each part optional, no assertion."""
        for op, av in seq:
            if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
                if av[0] != 0:
                    return False
            elif op is sre.SUBPATTERN:
                if not self.cannot_fail(av[3]):
                    return False
            elif op is sre.BRANCH:
                if not any(self.cannot_fail(alt) for alt in av[1]):
                    return False
            else:
                return False
        return True

    def edge(self, seq: list[tuple[Any, Any]], flags: int, last: bool) -> frozenset[str]:
        """The characters `seq` may start with (`last`: end with)."""
        chars: set[str] = set()
        for item in reversed(seq) if last else seq:
            chars |= self._item_edge(item, flags, last)
            if not self._item_nullable(item):
                break
        return frozenset(chars)

    def _item_edge(self, item: tuple[Any, Any], flags: int, last: bool) -> frozenset[str]:
        op, av = item
        if op is sre.LITERAL:
            return _cased(frozenset(chr(av)), flags)
        if op is sre.NOT_LITERAL:
            return _cased(self.sample - {chr(av)}, flags)
        if op is sre.ANY:
            return self.sample if flags & re.DOTALL else self.sample - {"\n"}
        if op is sre.IN:
            return _cased(_class(av, self.sample), flags)
        if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
            return self.edge(av[2], flags, last)
        if op is sre.SUBPATTERN:
            return self.edge(av[3], (flags | av[1]) & ~av[2], last)
        if op is sre.ATOMIC_GROUP:
            return self.edge(av, flags, last)
        if op is sre.BRANCH:
            return frozenset().union(*(self.edge(alt, flags, last) for alt in av[1]))
        if op in _ZERO_WIDTH:
            return frozenset()
        return self.sample  # a back reference, a conditional group: anything

    def repeats(
        self, seq: list[tuple[Any, Any]], flags: int, then_may_fail: bool, possessive: bool = False
    ) -> Iterator[_Repeat]:
        """Every backtracking unbounded repeat in `seq` (`possessive`: those that give nothing back too),
        and whether what follows it may fail (`then_may_fail`: whether what follows `seq` may)."""
        for k, item in enumerate(seq):
            after = then_may_fail or not self.cannot_fail(seq[k + 1 :])
            yield from self._item_repeats(item, flags, after, possessive)

    def _item_repeats(
        self, item: tuple[Any, Any], flags: int, after: bool, possessive: bool
    ) -> Iterator[_Repeat]:
        op, av = item
        if op in _REPEATS or (possessive and op is sre.POSSESSIVE_REPEAT):
            if av[1] == sre.MAXREPEAT:
                yield _Repeat(item, flags, after)
            # after an iteration: another, or what follows
            yield from self.repeats(av[2], flags, after, possessive)
        elif op is sre.SUBPATTERN:
            yield from self.repeats(av[3], (flags | av[1]) & ~av[2], after, possessive)
        elif op is sre.BRANCH:
            for alt in av[1]:
                yield from self.repeats(alt, flags, after, possessive)
        elif op in (sre.ASSERT, sre.ASSERT_NOT):
            yield from self.repeats(av[1], flags, True, possessive)
        elif possessive and op is sre.ATOMIC_GROUP:
            yield from self.repeats(av, flags, after, possessive)

    def leading(self, seq: list[tuple[Any, Any]], flags: int, then_may_fail: bool) -> Iterator[_Repeat]:
        """The unbounded repeats `seq` may start with (an anchor `^` ends the search: none then)."""
        for k, item in enumerate(seq):
            op, av = item
            after = then_may_fail or not self.cannot_fail(seq[k + 1 :])
            if op is sre.AT and av in _ANCHORS:
                return
            if op in _REPEATS and av[1] == sre.MAXREPEAT:
                yield _Repeat(item, flags, after)
            elif op in _REPEATS:
                yield from self.leading(av[2], flags, after)
            elif op is sre.SUBPATTERN:
                yield from self.leading(av[3], (flags | av[1]) & ~av[2], after)
            elif op is sre.BRANCH:
                for alt in av[1]:
                    yield from self.leading(alt, flags, after)
            if not self._item_nullable(item):
                return

    def trailing(self, seq: list[tuple[Any, Any]], flags: int) -> Iterator[tuple[tuple[Any, Any], int]]:
        """The unbounded repeats `seq` may end with."""
        for item in reversed(seq):
            op, av = item
            if op in _REPEATS and av[1] == sre.MAXREPEAT:
                yield item, flags
            elif op in _REPEATS:
                yield from self.trailing(av[2], flags)
            elif op is sre.SUBPATTERN:
                yield from self.trailing(av[3], (flags | av[1]) & ~av[2])
            elif op is sre.BRANCH:
                for alt in av[1]:
                    yield from self.trailing(alt, flags)
            if not self._item_nullable(item):
                return

    def starts(self, seq: list[tuple[Any, Any]], flags: int) -> frozenset[str]:
        """The characters a match may start with where it may start anywhere: an alternative anchored by
        `^` starts none elsewhere."""
        op, av = seq[0] if len(seq) == 1 else (None, None)
        if op is sre.BRANCH:
            return frozenset().union(*(self.starts(alt, flags) for alt in av[1]))
        if seq and seq[0][0] is sre.AT and seq[0][1] in _ANCHORS:
            return frozenset()
        return self.edge(seq, flags, last=False)

    def reached_within(
        self, seq: list[tuple[Any, Any]], target: tuple[Any, Any], chars: frozenset[str]
    ) -> bool | None:
        """Whether a match may reach the repeat `target` (one of `seq`'s, None if not there) reading only
        `chars`, those of its run: one begun inside the run must, to read the rest of it again. Where
        something before the repeat must read another character (`://` before a URL's user, which holds
        no `/`), a match begun in the run leaves it first, and the run is read once."""
        for item in seq:
            if item is target:
                return True
            op, av = item
            inner: list[list[tuple[Any, Any]]] = []
            if op in _REPEATS or op is sre.POSSESSIVE_REPEAT:
                inner = [av[2]]
            elif op is sre.SUBPATTERN:
                inner = [av[3]]
            elif op is sre.ATOMIC_GROUP:
                inner = [av]
            elif op is sre.BRANCH:
                inner = av[1]
            for part in inner:
                found = self.reached_within(part, target, chars)
                if found is not None:
                    return found
            if not self._item_nullable(item) and not self._edge_within(item, chars):
                return False
        return None

    def _edge_within(self, item: tuple[Any, Any], chars: frozenset[str]) -> bool:
        """Whether `item`, one that must read something, may read only `chars`: told by a character or a
        class; anything else counts as may."""
        if item[0] in (sre.LITERAL, sre.NOT_LITERAL, sre.IN):
            return bool(self._item_edge(item, self.flags, last=False) & chars)
        return True

    def refused_before(self, seq: list[tuple[Any, Any]], flags: int) -> frozenset[str]:
        """The characters a match may not start after: those a negative look-behind of one character
        that begins the pattern refuses (`(?<![a-z0-9+.-])`); none where it begins otherwise."""
        if seq and seq[0][0] is sre.ASSERT_NOT and seq[0][1][0] == -1:
            behind = list(seq[0][1][1])
            if len(behind) == 1 and behind[0][0] in (sre.IN, sre.LITERAL, sre.NOT_LITERAL):
                return self.edge(behind, flags, last=False)
        return frozenset()

    def read(self, searched: bool) -> list[str]:
        seq, flags = list(self.parsed), self.flags
        if searched:
            starts = self.starts(seq, flags)
            refused = self.refused_before(seq, flags)
            for repeat in self.repeats(seq, flags, False, possessive=True):
                chars = self.edge(repeat.item[1][2], repeat.flags, last=False) | self.edge(
                    repeat.item[1][2], repeat.flags, last=True
                )
                if (
                    repeat.then_may_fail
                    and chars & starts
                    and not chars <= refused
                    and self.reached_within(seq, repeat.item, chars) is not False
                ):
                    self.found.append(f"searched: {_shown(repeat.item)} may start a match and then fail")
        self._adjacent(seq, flags, False)
        return self.found

    def _adjacent(self, seq: list[tuple[Any, Any]], flags: int, then_may_fail: bool) -> None:
        """Shapes 2 and 3 in `seq` and every part of it."""
        for k, item in enumerate(seq):
            op, av = item
            after = then_may_fail or not self.cannot_fail(seq[k + 1 :])
            for first, first_flags in self.trailing([item], flags):
                ends = self.edge(first[1][2], first_flags, last=True)
                for second in self.leading(seq[k + 1 :], flags, then_may_fail):
                    if second.then_may_fail and ends & self.edge(second.item[1][2], second.flags, last=False):
                        self.found.append(f"adjacent: {_shown(first)} then {_shown(second.item)}")
            if op in _REPEATS:
                body = av[2]
                if av[1] == sre.MAXREPEAT and any(True for _ in self.repeats(body, flags, True)):
                    inner_end = frozenset().union(
                        *(self.edge(r[1][2], f, last=True) for r, f in self.trailing(body, flags))
                    )
                    inner_start = frozenset().union(
                        *(
                            self.edge(r.item[1][2], r.flags, last=False)
                            for r in self.leading(body, flags, True)
                        )
                    )
                    if after and (
                        inner_end & self.edge(body, flags, last=False)
                        or inner_start & self.edge(body, flags, True)
                    ):
                        self.found.append(f"nested: {_shown(item)}")
                self._adjacent(body, flags, after)
            elif op is sre.SUBPATTERN:
                self._adjacent(av[3], (flags | av[1]) & ~av[2], after)
            elif op is sre.BRANCH:
                for alt in av[1]:
                    self._adjacent(alt, flags, after)


def _shown(item: tuple[Any, Any]) -> str:
    shown = repr(item)
    return shown if len(shown) <= 120 else shown[:117] + "..."


def backtracking(pattern: re.Pattern[str], searched: bool) -> list[str]:
    """Each shape of `pattern` (the module docstring's three) that reads a run once per position in it;
    `searched`: it is searched for (tried at every position), not matched at one."""
    return _Reader(pattern).read(searched)


def patterns_read(
    module: ModuleType, held: dict[str, re.Pattern[str]] | None = None
) -> dict[str, tuple[re.Pattern[str], bool]]:
    """Every pattern `module` holds (its own, those of `held`, named `Owner.field`, and a literal it passes
    to `re`), by name, and whether it is searched for (tried at every position: `search`, `sub`, `finditer`
    ... on it anywhere in the module's source, or a use not seen there) or only matched at one (`match`,
    `fullmatch`). Text patterns only: a bytes pattern is not read by `backtracking`."""
    methods: dict[str, set[str]] = {}
    literals: dict[str, tuple[re.Pattern[str], bool]] = {}
    for node in ast.walk(ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        target, method = node.func.value, node.func.attr
        name = target.id if isinstance(target, ast.Name) else getattr(target, "attr", None)
        if name == "re" and node.args and isinstance(node.args[0], ast.Constant):
            if method in SEARCHING | MATCHING and isinstance(node.args[0].value, str):
                literal = node.args[0].value
                literals[f"re.{method}({literal!r})"] = (re.compile(literal), method in SEARCHING)
        elif isinstance(name, str):
            methods.setdefault(name, set()).add(method)
    patterns = {
        **{name: value for name, value in vars(module).items() if isinstance(value, re.Pattern)},
        **(held or {}),
    }
    read = {}
    for name, pattern in patterns.items():
        if not isinstance(pattern.pattern, str):
            continue
        used = methods.get(name.rsplit(".", 1)[-1], set())
        read[name] = (pattern, bool(used & SEARCHING) or not used & MATCHING)
    return {**read, **literals}
