"""Value sets, compiled once at start-up from `policies/valuesets/*.yaml`.

A value set names the codes that stand for one clinical concept in every system the contract
accepts: ICD-10-CM prefixes (with optional excluded prefixes), SNOMED CT, CPT/HCPCS and LOINC
codes, RxNorm ingredients (with their names and known product codes, because EHRs send product
codes), and words that identify a concept in free text (e.g. `Device.type.text`).
Matching is the only thing this module does; deciding what a match means is the engine's job.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from service.codes import (
    CPT,
    HCPCS,
    HYPHENS,
    ICD10CM,
    LOINC,
    RXNORM,
    SNOMED,
    Code,
    Routes,
    icd10_key,
    negated,
)
from service.yamlsource import SourceError, check_schema, load

_FLAT_SYSTEMS = (SNOMED, CPT, HCPCS, LOINC)
# The grammar of a value set's `not_this` words (its YAML says which words; read by
# `ValueSet.names_in_words`): a word of `before` governs a listed word up to three words after it (one of
# `next_word_only` only the word right after it), never across a word of `not_across` ("MRSA carrier with
# cellulitis" names a cellulitis); a word of `after` governs the listed word right before it, one word
# between at most ("Infection control precautions").
# In a word, a space stands for any white space, a hyphen for any hyphen or white space, and a final `*` for
# the rest of a word. A word of `next_word_only` joined by a hyphen to the word before it governs nothing
# ("Week-long cellulitis"); "Status-post" is the word "status-post".
_BEFORE_REACH = 3
_AFTER_REACH = 1
# A route of administration's value set is `route-` and the route's name (`route-oral`): its codes, and
# the words of the route and of its dose forms. Read by the medication-routes test (`routes: [oral]`) and,
# all of them together, by `Terminology.other_routes` (what a route other than a neuraxial one says).
ROUTE_PREFIX = "route-"
# The neuraxial routes' value set: how a drug order's route says the drug is the pump's (`Terminology.routes`,
# read by service/codes.py's `neuraxial_route`), never among the other routes' words.
NEURAXIAL_ROUTES = f"{ROUTE_PREFIX}neuraxial"
# Codes the clinical data contract fixes, by the value set that must hold them (`Terminology.lacking`):
# an edit of the data cannot drop them. §2: an infusate's route, SNOMED 72607000 intrathecal or 404820008
# epidural.
CONTRACT_CODES: Mapping[str, Mapping[str, frozenset[str]]] = {
    NEURAXIAL_ROUTES: {SNOMED: frozenset({"72607000", "404820008"})},
}
# What a Procedure's `focalDevice.action` says of its device (`DeviceActions`, `Terminology.device_actions`,
# read by service/record.py): the codes and words saying the Procedure put it in, and the SNOMED CT action
# codes saying it did not (a removal, a replacement, an adjustment: the device was in place before it)
DEVICE_PUT_IN = "device-put-in"
DEVICE_NOT_PUT_IN = "device-not-put-in"
_NO_CODES: frozenset[str] = frozenset()
_KNOWN_KEYS = {
    "id",
    "title",
    "reference",
    "note",
    "icd10cm",
    "icd10cm_exclude",
    "rxnorm",
    "text",
    "removals",
    "replacing",
    "not_this",
    "neuraxial_too",
    "route_text_only",
    "tells_neither",
    "whole_text",
    *_FLAT_SYSTEMS,
}


class ValueSetError(SourceError):
    """A value-set file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class Ingredient:
    """An RxNorm ingredient: its name (matched as a word in displays), its RxCUI if verified, and
    other RxCUIs known to contain it (products, or more specific ingredients such as insulin types)."""

    name: str
    code: str | None
    products: frozenset[str] = frozenset()
    snomed: frozenset[str] = frozenset()
    pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pattern", re.compile(rf"\b{re.escape(self.name)}\b", re.IGNORECASE))

    def matches_text(self, text: str) -> bool:
        return bool(text) and self.pattern.search(text) is not None

    def matches_code(self, rxcui: str) -> bool:
        return rxcui == self.code or rxcui in self.products

    def names_substance(self, codes: Iterable[Code], text: str) -> bool:
        """Whether an allergy or intolerance names this ingredient (contract §3: RxNorm ingredient or
        SNOMED substance, or text)."""
        if self.matches_text(text):
            return True
        return any(
            (c.system == RXNORM and self.matches_code(c.code))
            or (c.system == SNOMED and c.code in self.snomed)
            for c in codes
        )


class IngredientFinder:
    """Which known ingredients a medication contains, by RxCUI or by name: what `Ingredient.matches_code`
    and `Ingredient.matches_text` answer for each ingredient in turn, looked up once per RxCUI and
    searched by word only where the name occurs in the text at all. Made once per Terminology (the
    catalog's ingredients), read by every call: the one place a drug's text is matched to ingredients'
    names, by the record (service/record.py), the infusates (service/infusates.py) and the engine's
    pairing of an ordered drug with a value set's ingredients (`EvaluationContext.infusate_ingredients`)."""

    def __init__(self, ingredients: tuple[Ingredient, ...]) -> None:
        by_code: dict[str, set[str]] = {}
        for ingredient in ingredients:
            for rxcui in (ingredient.code, *ingredient.products):
                if rxcui is not None:
                    by_code.setdefault(rxcui, set()).add(ingredient.name)
        self.by_code = {rxcui: frozenset(names) for rxcui, names in by_code.items()}
        self.ingredients = ingredients
        # `matches_text` run only where it can match (perf30): between ASCII texts case-insensitive matching
        # is `str.lower`'s, so an ASCII name, in lower case, that does not occur in an ASCII text's lower
        # case cannot match; a name past ASCII is searched for by its pattern alone (long s matches "s")
        self._ascii = tuple((i.name.lower(), i) for i in ingredients if i.name.isascii())
        self._past_ascii = tuple(i for i in ingredients if not i.name.isascii())

    def names(self, text: str, codes: tuple[Code, ...]) -> frozenset[str]:
        found: set[str] = set()
        for code in codes:
            if code.system == RXNORM:
                found |= self.by_code.get(code.code, frozenset())
        if text:
            if not text.isascii():
                found.update(i.name for i in self.ingredients if i.matches_text(text))
            else:
                lowered = text.lower()
                found.update(i.name for name, i in self._ascii if name in lowered and i.matches_text(text))
                found.update(i.name for i in self._past_ascii if i.matches_text(text))
        return frozenset(found)


def _word_pattern(word: str) -> str:
    """A `not_this` word as a regular expression: a space in it any white space, a hyphen any hyphen or
    white space ("post-acute": "Post-acute", "Post acute"), a final `*` the rest of a word ("vaccin*":
    vaccine, vaccination)."""
    stem, rest = (word[:-1], r"\w*") if word.endswith("*") else (word, "")
    hyphen = rf"[\s{HYPHENS}]+"
    return r"\s+".join(hyphen.join(map(re.escape, part.split("-"))) for part in stem.split()) + rest


@dataclass(frozen=True)
class NotThis:
    """The words that make a value set's word name something other than the concept: before it (a
    negation, a history, a screening, a risk, an after-effect: "No evidence of infection", "History of
    pneumonia"), after it (a practice: "Infection control precautions"), and those a `before` word never
    reaches across ("with", "and": "MRSA carrier with cellulitis"). Data: the value set's `not_this`."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    not_across: tuple[str, ...] = ()
    # of `before`, the words that govern only the word right after them, a prefix or an object
    # ("Non-infective", "Post-infectious", "Fear of infection"): "Non-healing infected wound",
    # "Post-operative wound infection" and "Fear of falling after infection" name one (review20 L4)
    next_word_only: tuple[str, ...] = ()
    # of `next_word_only`, the words that govern a name of two of the value set's words as one ("Status post
    # COVID-19 infection"), where "Non-COVID pneumonia" names a pneumonia: `name_before` is such a first word
    whole_name: tuple[str, ...] = ()
    # of the value set's words, those that end such a name ("infection", "pneumonia"; none listed: any):
    # "s/p sepsis bacteremia" is no one name (review23b)
    name_ends: tuple[str, ...] = ()
    # a `before` word -> the value set's words it governs, where it governs only those ("post-acute": a
    # COVID-19, not "post-acute sepsis"; review23b)
    governs_only: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # of `before`, the words a word of `turned_by` right before them turns around ("Not resolved
    # pneumonia" names one; review23b)
    turned: tuple[str, ...] = ()
    turned_by: tuple[str, ...] = ()
    # of `before` and `after`, the words of a practice (a screening, a test) whose result a word of `found`
    # beside them says: "Positive screen for sepsis", "COVID-19 test positive", "Positive COVID-19 test"
    # name one the practice found (words24)
    found_by: tuple[str, ...] = ()
    found: tuple[str, ...] = ()
    # marks (one character each, no word's) an `after` word is read across besides spaces and hyphens: a
    # route's comma ("Tablet, Sublingual"), where an infection's "Pneumonia, test ordered" names one (words24)
    after_across: tuple[str, ...] = ()

    def before_pattern(self, word: str, name_before: str) -> str | None:
        """What goes before the value set's `word` (up to `_BEFORE_REACH` words between, none after a word
        of `next_word_only`, but `name_before` and a number after a word of `whole_name` where `word` may end
        a name, `name_ends`), for `negated`: the words of `before` that govern `word` (`governs_only`)."""
        if not self.before:
            return None
        governing = [w for w in self.before if word in self.governs_only.get(w, (word,))]
        reaching = [_word_pattern(w) for w in governing if w not in self.next_word_only]
        next_only = [_word_pattern(w) for w in governing if w in self.next_word_only]
        whole_name = [w for w in self.whole_name if w in governing]
        if whole_name and word in (self.name_ends or (word,)):
            whole = "|".join(map(_word_pattern, whole_name))
            name = rf"[\s{HYPHENS}]+(?:{name_before})(?:[\s{HYPHENS}]+\d+\b)?"
            next_only.append(rf"(?:{whole}){name}")
        guard = rf"(?!(?:{'|'.join(_word_pattern(w) for w in self.not_across)})\b)" if self.not_across else ""
        # Looks at the space before the value set's word, not takes it: `negated`'s own `[\s-]*` does,
        # and two runs side by side cost time quadratic in a long run of spaces (attack20 H1).
        reach = rf"(?:[\s{HYPHENS}]+{guard}[\w/]+){{0,{_BEFORE_REACH}}}?"
        words = [rf"(?:{'|'.join(reaching)}){reach}"] if reaching else []
        # a word of `next_word_only` joined by a hyphen to the word before it is part of that word, and
        # governs nothing: "Week-long cellulitis", "Life-long infection" (where "Long COVID" is one)
        words += [rf"(?<!\w[{HYPHENS}])(?:{'|'.join(next_only)})"] if next_only else []
        if not words:
            return r"(?!)"  # no word of `before` governs this one
        return rf"(?:{'|'.join(words)})(?=[\s{HYPHENS}])"

    @cached_property
    def turned_pattern(self) -> str | None:
        """What is taken out of a text first, so that neither it nor a word before it governs what follows:
        a word of `turned` with a word of `turned_by` right before it ("Not resolved", "Not yet healed"), a
        `before` practice of `found_by` with a word of `found` right before it ("Positive screen")."""
        pairs = [(self.turned_by, self.turned), (self.found, [w for w in self.found_by if w in self.before])]
        turned = [
            rf"(?:{'|'.join(map(_word_pattern, by))})[\s{HYPHENS}]+(?:{'|'.join(map(_word_pattern, words))})"
            for by, words in pairs
            if by and words
        ]
        return rf"\b(?:{'|'.join(turned)})\b" if turned else None

    def after_pattern(self, phrase: str) -> str | None:
        """The value set's word (`phrase`) with what after it (up to `_AFTER_REACH` words between, across
        spaces, hyphens and the marks of `after_across`) makes it name another thing, a practice about it;
        a practice of `found_by` not with a word of `found` right before the word ("Positive COVID-19
        test") nor after the practice, one word between at most ("COVID-19 test result positive"): that
        one names what the practice found."""
        if not self.after:
            return None
        gap = rf"[\s{HYPHENS}{''.join(map(re.escape, self.after_across))}]+"
        between = rf"(?:{gap}\w+){{0,{_AFTER_REACH}}}{gap}"
        practices = [w for w in self.after if w in self.found_by and self.found]
        plain = [_word_pattern(w) for w in self.after if w not in practices]
        alternatives = [rf"\b(?:{phrase}){between}(?:{'|'.join(plain)})\b"] if plain else []
        if practices:
            found = "|".join(map(_word_pattern, self.found))
            not_found_before = "".join(rf"(?<!\b{re.escape(w)}[\s{HYPHENS}])" for w in self.found)
            not_found_after = rf"(?!(?:[\s{HYPHENS}]+\w+)?[\s:{HYPHENS}]+(?:{found})\b)"
            practice = "|".join(map(_word_pattern, practices))
            alternatives.append(
                rf"{not_found_before}\b(?:{phrase}){between}(?:{practice})\b{not_found_after}"
            )
        return "|".join(alternatives)


@dataclass(frozen=True)
class ValueSet:
    """One compiled value set; `matches` answers whether a code (or text) belongs to it."""

    id: str
    title: str
    reference: str
    icd10_prefixes: tuple[str, ...] = ()
    icd10_excluded: tuple[str, ...] = ()
    codes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    ingredients: tuple[Ingredient, ...] = ()
    text_words: tuple[str, ...] = ()
    not_this: NotThis = NotThis()  # what makes a `text_words` word name another thing (`names_in_words`)
    # of a route's `text_words`, those an intrathecal or epidural drug's route has too ("injection")
    neuraxial_too: tuple[str, ...] = ()
    # of a route's `text_words`, those read in a dosage's route only, never in a drug's name ("iv")
    route_text_only: tuple[str, ...] = ()
    # of a route's family, the SNOMED codes that say neither it nor another route: read by the words
    # beside them (418418000 Intraspinal route, intrathecal or epidural without saying which)
    tells_neither: frozenset[str] = frozenset()
    # of a route's family, the texts that say it when they are a route's whole text, as written (case kept,
    # trimmed: "IT" intrathecal, never "it" nor "apply it"); never read in a drug's name
    whole_text: frozenset[str] = frozenset()
    # a removal procedure (CPT) -> the implant and presence codes of the device it takes out
    removals: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # of those codes, the implants that with a removal on one day are one replacement ("Implantation or
    # replacement"): a removal answers them from a later day only, the others from their own day on
    replacing: frozenset[str] = frozenset()

    def matches(self, code: Code) -> bool:
        """Whether `code` belongs to the value set: `matches_any` of it alone (the rule is written once)."""
        return self.matches_any((code,))

    def matches_any(self, codes: Iterable[Code]) -> bool:
        """Whether any of `codes` belongs to the value set. One loop, no call per code: the engine
        asks this of every value set for every fact of a chart, well over a thousand times a call."""
        for code in codes:
            system = code.system
            if system == ICD10CM:
                key = icd10_key(code.code)
                if key.startswith(self.icd10_prefixes) and not key.startswith(self.icd10_excluded):
                    return True
            elif system == RXNORM:
                if code.code in self.ingredient_codes:  # `ingredient_for_code` finds one
                    return True
            elif code.code in self.codes.get(system, _NO_CODES):
                return True
        return False

    def listed_key(self, code: Code) -> str:
        """The value set's own entry a member `code` belongs by, as `icd10_key` writes it: an ICD-10-CM
        code's listed prefix (`T85.610` for `T85.610A`, the longest where several hold it), another
        system's code itself."""
        key = icd10_key(code.code)
        if code.system != ICD10CM:
            return key
        return max((p for p in self.icd10_prefixes if key.startswith(p)), key=len, default=key)

    @cached_property
    def ingredient_names(self) -> frozenset[str]:
        return frozenset(i.name for i in self.ingredients)

    @cached_property
    def ingredient_codes(self) -> frozenset[str]:
        """Every RxCUI `ingredient_for_code` finds an ingredient by (an ingredient's own, its products'):
        `matches_any` asks of each RxNorm code whether there is one, where the loop over the ingredients
        cost GEHA's medication-routes test, the first to ask for its class's drugs, 0.4 M of its 1.6 M
        instructions over a Synthea chart's 107 drug orders (perf30)."""
        return frozenset(c for i in self.ingredients for c in (i.code, *i.products) if c is not None)

    def holds_drug(self, ingredients: frozenset[str], codes: Iterable[Code]) -> bool:
        """Whether a drug is in the set, by whatever route: by one of its `ingredients` (found by
        name when the record was built) or by a code."""
        return not ingredients.isdisjoint(self.ingredient_names) or self.matches_any(codes)

    def ingredient_for_code(self, rxcui: str) -> Ingredient | None:
        for ingredient in self.ingredients:
            if rxcui == ingredient.code or rxcui in ingredient.products:
                return ingredient
        return None

    def matches_text(self, text: str) -> bool:
        """Whether a listed phrase is in `text` as whole words, singular or plural ("spinal cord
        stimulators" names a spinal cord stimulator), and not negated ("non-implantable pulse
        generator" names an external one)."""
        return _names(text.lower(), self.text_words, self.text_stems, self._text_patterns)

    def names_dose_form(self, drug_name: str) -> bool:
        """`matches_text` of a drug's name, whose words give its dose form ("Oral Tablet"), but not by
        the words a route says itself only (`route_text_only`): "IV" in "Tramadol 50 MG Oral Tablet
        (C-IV)" is its schedule, not its route; nor by a word that `not_this` makes another route's
        ("Sublingual Tablet" is no oral tablet)."""
        return _names(
            drug_name.lower(), self.text_words, self.text_stems, self._word_patterns, self.route_text_only
        )

    @cached_property
    def _text_patterns(self) -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
        """Per text word: the pattern naming it and the one negating it, compiled once. A word is whole,
        or its plural; one ending in `*` is a word's start, any ending after it ("implant*": implant,
        implanted, implantation), as in `not_this`."""
        phrases = [
            rf"{re.escape(word[:-1])}\w*" if word.endswith("*") else rf"{re.escape(word)}(?:e?s)?\b"
            for word in self.text_words
        ]
        return tuple((re.compile(rf"\b{phrase}"), negated(phrase)) for phrase in phrases)

    @cached_property
    def text_stems(self) -> tuple[str, ...]:
        """Per text word, what of it a text holds literally wherever the word is named (`_names`)."""
        return tuple(word.removesuffix("*") for word in self.text_words)

    def names_in_words(self, words: str) -> bool:
        """Whether a diagnosis's own words (its text and displays) name the concept: a listed word that
        no word before or after it makes a negation, a history, a screening, a prevention, a risk, an
        exposure or an after-effect of it instead (the value set's `not_this`: "no evidence of
        infection", "History of pneumonia", "Infection control precautions"; "Surgical site infection
        s/p laminectomy" names one). Not a code match: what it means is the engine's (an absence rule
        leaves such a diagnosis to the payer's reviewer)."""
        return _names(words.lower(), self.text_words, self.text_stems, self._word_patterns)

    @cached_property
    def _word_patterns(self) -> tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]:
        """`_text_patterns`, each with what before or after it makes it name another thing (`not_this`)."""
        names = "|".join(named.pattern.removeprefix(r"\b") for named, _ in self._text_patterns)
        turned = self.not_this.turned_pattern
        patterns = []
        for word, (named, negation) in zip(self.text_words, self._text_patterns, strict=True):
            phrase = named.pattern.removeprefix(r"\b")
            before = self.not_this.before_pattern(word, names)
            # a turned word first: at one place in the text, the leftmost match's first alternative wins
            not_this = [turned] if turned else []
            not_this.append(negated(phrase, before).pattern if before else negation.pattern)
            after = self.not_this.after_pattern(phrase)
            if after:
                not_this.append(after)
            patterns.append((named, re.compile("|".join(not_this), re.IGNORECASE)))
        return tuple(patterns)


def _names(
    lowered: str,
    words: tuple[str, ...],
    stems: tuple[str, ...],
    patterns: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...],
    unread: tuple[str, ...] = (),
) -> bool:
    """Whether one of `words` (but those `unread`) is named in `lowered` by its patterns (`named`, not
    `not_this`), in turn. A word whose stem (the word, but a final `*`) is not in the text at all cannot
    be (each pattern that names it, and each that takes it out, holds the stem literally), so its
    patterns are not run: a route typed "Oral" runs the patterns of one of the 33 route words, not all
    66."""
    return any(
        named.search(not_this.sub(" ", lowered))
        for word, stem, (named, not_this) in zip(words, stems, patterns, strict=True)
        if stem in lowered and word not in unread
    )


def _string_list(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str | int) for x in raw):
        raise ValueSetError(f"{where}: expected a list of codes")
    return [str(x).strip() for x in raw]


def _lowered(raw: Any, where: str) -> tuple[str, ...]:
    return tuple(w.lower() for w in _string_list(raw, where))


def _not_this(raw: Mapping[str, Any], where: str, text_words: tuple[str, ...]) -> NotThis:
    """`not_this` of a value set whose words are `text_words`: each key naming words of another (of
    `before`, of the value set's text) is refused where it names a word that is not there."""
    if not isinstance(raw, Mapping):
        raise ValueSetError(f"{where}: expected a mapping of before, after and not_across")
    governs_only = raw.get("governs_only") or {}
    if not isinstance(governs_only, Mapping):
        raise ValueSetError(f"{where}.governs_only: expected a mapping of before words to the words governed")
    words = {key: _lowered(raw[key], f"{where}.{key}") for key in raw if key != "governs_only"}
    not_this = NotThis(
        **words,
        governs_only={
            str(w).lower(): _lowered(only, f"{where}.governs_only.{w}") for w, only in governs_only.items()
        },
    )
    for key, listed, among in (
        ("next_word_only", not_this.next_word_only, "its before words"),
        ("whole_name", not_this.whole_name, "its next_word_only"),
        ("governs_only", tuple(not_this.governs_only), "its before words"),
        ("turned", not_this.turned, "its before words"),
    ):
        within = not_this.next_word_only if key == "whole_name" else not_this.before
        unlisted = [w for w in listed if w not in within]
        if unlisted:
            raise ValueSetError(f"{where}.{key}: {', '.join(unlisted)} not among {among}")
    for key, listed in (
        ("name_ends", not_this.name_ends),
        *((f"governs_only.{w}", governed) for w, governed in not_this.governs_only.items()),
    ):
        unlisted = [w for w in listed if w not in text_words]
        if unlisted:
            raise ValueSetError(f"{where}.{key}: {', '.join(unlisted)} not among the value set's text")
    if bool(not_this.turned) != bool(not_this.turned_by):
        raise ValueSetError(f"{where}: turned and turned_by go together")
    if bool(not_this.found) != bool(not_this.found_by):
        raise ValueSetError(f"{where}: found and found_by go together")
    unlisted = [w for w in not_this.found_by if w not in not_this.before + not_this.after]
    if unlisted:
        raise ValueSetError(f"{where}.found_by: {', '.join(unlisted)} not among its before or after words")
    # read right before the value set's word at a fixed width (`NotThis.after_pattern`): one word each
    not_one = [w for w in not_this.found if not re.fullmatch(r"\w+", w)]
    if not_one:
        raise ValueSetError(f"{where}.found: {', '.join(not_one)} is not one word")
    return not_this


def compile_value_set(raw: Mapping[str, Any], where: str) -> ValueSet:
    """Turn one parsed YAML mapping into a ValueSet, failing with the file name on any error."""
    if not isinstance(raw, Mapping):
        raise ValueSetError(f"{where}: top level must be a mapping")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ValueSetError(f"{where}: unknown key(s) {', '.join(unknown)}")
    for required in ("id", "title", "reference"):
        if not isinstance(raw.get(required), str) or not raw[required].strip():
            raise ValueSetError(f"{where}: '{required}' is required")
    codes = {
        system: frozenset(
            c.upper() if system == HCPCS else c for c in _string_list(raw[system], f"{where}.{system}")
        )
        for system in _FLAT_SYSTEMS
        if system in raw
    }
    ingredients = []
    for i, item in enumerate(raw.get("rxnorm") or []):
        if not isinstance(item, Mapping) or not isinstance(item.get("ingredient"), str):
            raise ValueSetError(
                f"{where}.rxnorm[{i}]: needs 'ingredient' (its name) and, if verified, 'code'"
            )
        products = frozenset(_string_list(item.get("products", []), f"{where}.rxnorm[{i}].products"))
        code = str(item["code"]) if item.get("code") is not None else None
        substances = frozenset(_string_list(item.get("snomed", []), f"{where}.rxnorm[{i}].snomed"))
        ingredients.append(Ingredient(item["ingredient"].strip().lower(), code, products, substances))
    text_words = _lowered(raw.get("text", []), f"{where}.text")
    value_set = ValueSet(
        id=raw["id"],
        title=raw["title"],
        reference=raw["reference"],
        icd10_prefixes=tuple(icd10_key(c) for c in _string_list(raw.get("icd10cm", []), f"{where}.icd10cm")),
        icd10_excluded=tuple(
            icd10_key(c) for c in _string_list(raw.get("icd10cm_exclude", []), f"{where}.icd10cm_exclude")
        ),
        codes=codes,
        ingredients=tuple(ingredients),
        text_words=text_words,
        not_this=_not_this(raw.get("not_this") or {}, f"{where}.not_this", text_words),
        neuraxial_too=tuple(
            w.lower() for w in _string_list(raw.get("neuraxial_too", []), f"{where}.neuraxial_too")
        ),
        route_text_only=tuple(
            w.lower() for w in _string_list(raw.get("route_text_only", []), f"{where}.route_text_only")
        ),
        tells_neither=frozenset(_string_list(raw.get("tells_neither", []), f"{where}.tells_neither")),
        whole_text=frozenset(_string_list(raw.get("whole_text", []), f"{where}.whole_text")),
        removals={
            removal: frozenset(icd10_key(c) for c in _string_list(undone, f"{where}.removals.{removal}"))
            for removal, undone in (raw.get("removals") or {}).items()
        },
        replacing=frozenset(
            icd10_key(c) for c in _string_list(raw.get("replacing", []), f"{where}.replacing")
        ),
    )
    if not (value_set.icd10_prefixes or codes or ingredients or value_set.text_words):
        raise ValueSetError(f"{where}: value set '{value_set.id}' has no codes")
    for key, subset in (
        ("neuraxial_too", value_set.neuraxial_too),
        ("route_text_only", value_set.route_text_only),
    ):
        unlisted = [w for w in subset if w not in value_set.text_words]
        if unlisted:
            raise ValueSetError(f"{where}: {key}: {', '.join(unlisted)} not among the value set's text")
    starred = [w for w in value_set.text_words if "*" in w[:-1] or w == "*"]
    if starred:
        raise ValueSetError(f"{where}: text: {', '.join(starred)}: a `*` stands only at a word's end")
    undone = {code for codes in value_set.removals.values() for code in codes}
    unlisted = sorted(value_set.replacing - undone)
    if unlisted:
        raise ValueSetError(f"{where}: replacing: {', '.join(unlisted)} not among the codes a removal undoes")
    both = sorted(value_set.tells_neither & value_set.codes.get(SNOMED, _NO_CODES))
    if both:
        raise ValueSetError(f"{where}: tells_neither: {', '.join(both)} also among the value set's snomed")
    return value_set


@dataclass(frozen=True)
class DeviceActions:
    """What a Procedure's `focalDevice.action` says of its device: put in by that Procedure, or in place
    before it (`PatientRecord.before` keeps it then: the pump a removal or a replacement names was already
    there). A SNOMED CT code decides when one of the two value sets lists it; an action coded otherwise, or
    not at all, is read by `put_in`'s words, since most of SNOMED CT's action hierarchy says neither
    (129325002 Introduction - action, review21b L1), and a removal coded so but worded "Implant removal"
    is no implant (review21 L2)."""

    put_in: ValueSet
    not_put_in: ValueSet

    def puts_in(self, codes: Iterable[Code], words: str) -> bool:
        """Whether an action of these `codes` and `words` (its text and displays) put the device in."""
        codes = tuple(codes)
        if self.put_in.matches_any(codes):
            return True
        if self.not_put_in.matches_any(codes):
            return False
        return self.put_in.matches_text(words)


def _device_actions(put_in: ValueSet, not_put_in: ValueSet) -> DeviceActions:
    """`DeviceActions` of the two value sets, refused when the codes of one could be read as the other's:
    `not_put_in` is SNOMED CT action codes only (an action's words are `put_in`'s, its code decides only
    when listed), and no code is in both."""
    others = sorted(set(not_put_in.codes) - {SNOMED})
    if others or not_put_in.text_words or not_put_in.icd10_prefixes or not_put_in.ingredients:
        raise ValueSetError(
            f"valuesets: {not_put_in.id}: only SNOMED CT action codes are read "
            f"(the words of an action are {put_in.id}'s){': not ' + ', '.join(others) if others else ''}"
        )
    both = sorted(put_in.codes.get(SNOMED, _NO_CODES) & not_put_in.codes.get(SNOMED, _NO_CODES))
    if both:
        raise ValueSetError(f"valuesets: {not_put_in.id}: {', '.join(both)} also in {put_in.id}")
    return DeviceActions(put_in, not_put_in)


class Terminology:
    """All value sets by id. Unknown ids raise, so a policy cannot silently match nothing."""

    def __init__(
        self,
        value_sets: Iterable[ValueSet],
        assessment_codes: Mapping[str, str] | None = None,
        qualified: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        # the project CodeSystem's codes (contract §5), each with its display: the words cards use for it
        self.assessment_codes: Mapping[str, str] = dict(assessment_codes or {})
        # of a code whose qualifier names codes, each option's (`AssessmentCodeSystem.qualified`)
        self._qualified = {code: dict(options) for code, options in (qualified or {}).items()}
        self._by_id = {vs.id: vs for vs in value_sets}  # load_terminology refuses an id given twice
        by_name: dict[str, Ingredient] = {}
        for vs in self._by_id.values():
            for ingredient in vs.ingredients:
                known = by_name.get(ingredient.name)
                by_name[ingredient.name] = (
                    ingredient
                    if known is None
                    else Ingredient(
                        known.name,
                        known.code or ingredient.code,
                        known.products | ingredient.products,
                        known.snomed | ingredient.snomed,
                    )
                )
        self._ingredients = tuple(by_name.values())
        self.ingredient_finder = IngredientFinder(self._ingredients)
        # the words of every other route value set but those a neuraxial route has too, as one value
        # set: a route whose words are among them is none of the neuraxial ones (`codes.neuraxial_route`)
        # every route's value set: a dosage whose route one of them names was given by that route
        self.route_value_sets = tuple(vs for vs in self._by_id.values() if vs.id.startswith(ROUTE_PREFIX))
        routes = [vs for vs in self.route_value_sets if vs.id != NEURAXIAL_ROUTES]
        self.other_routes = ValueSet(
            id=f"{ROUTE_PREFIX}*",
            title="Routes other than intrathecal or epidural",
            reference=", ".join(vs.id for vs in routes),
            text_words=tuple(w for vs in routes for w in vs.text_words if w not in vs.neuraxial_too),
        )
        # what a drug order's route says (`codes.neuraxial_route`); without the neuraxial value set (the
        # catalog refuses a folder without it) no route says the drug is the pump's. Its words are read
        # anywhere in a text ("intrathecally"), so a word's final `*` (any ending) is its stem
        neuraxial = self._or_empty(NEURAXIAL_ROUTES)
        self.routes = Routes(
            neuraxial.codes.get(SNOMED, _NO_CODES),
            neuraxial.text_stems,
            neuraxial.tells_neither,
            self.other_routes,
            neuraxial.whole_text,
        )
        # what a Procedure's device action says (service/record.py); the catalog refuses a folder without
        # either value set, as without the neuraxial one
        self.device_actions = _device_actions(
            self._or_empty(DEVICE_PUT_IN), self._or_empty(DEVICE_NOT_PUT_IN)
        )

    def __getitem__(self, value_set_id: str) -> ValueSet:
        try:
            return self._by_id[value_set_id]
        except KeyError:
            raise ValueSetError(f"unknown value set '{value_set_id}'") from None

    def __contains__(self, value_set_id: object) -> bool:
        return isinstance(value_set_id, str) and value_set_id in self._by_id

    def _or_empty(self, value_set_id: str) -> ValueSet:
        """The value set, or an empty one of that id where a folder lacks it (which the catalog refuses)."""
        return self._by_id.get(value_set_id) or ValueSet(value_set_id, "", "")

    def assessment_name(self, code: str) -> str:
        """The display of an assessment code (contract §5): how a card names the assessment."""
        return self.assessment_codes.get(code, code)

    def lacking(self, required: Mapping[str, Mapping[str, frozenset[str]]] = CONTRACT_CODES) -> list[str]:
        """The codes of `required` (by value set, by system) that its value set does not hold, each as
        `value-set: system code`: the clinical data contract's codes (`CONTRACT_CODES`) by default."""
        return [
            f"{vs_id}: {system} {code}"
            for vs_id, by_system in required.items()
            for system, codes in by_system.items()
            for code in sorted(codes)
            if vs_id in self and code not in self[vs_id].codes.get(system, _NO_CODES)
        ]

    def qualified_by(self, code: str, option: str | None) -> str | None:
        """The assessment code a qualifier's option names, as policies/assessment-codes.yaml says
        (`it-trial-scale-reduction` on the `scale` `ashworth`: `ashworth-score`); None for another."""
        return self._qualified.get(code, {}).get(option or "")

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def reads(self, codes: Iterable[Code]) -> bool:
        """Whether any of `codes` is one a policy reads: in a value set, or an assessment code."""
        codes = tuple(codes)
        return any(c.code in self.assessment_codes for c in codes) or any(
            vs.matches_any(codes) for vs in self._by_id.values()
        )

    def all_ingredients(self) -> tuple[Ingredient, ...]:
        """Every RxNorm ingredient any value set names, once per name (for exposure grouping)."""
        return self._ingredients


def load_terminology(
    directory: Path,
    assessment_codes: Mapping[str, str] | None = None,
    qualified: Mapping[str, Mapping[str, str]] | None = None,
) -> Terminology:
    """Load, schema-check and compile every `*.yaml` file of a value-set directory; an id given twice
    is refused naming both files (a policy naming it would get whichever came last)."""
    value_sets = []
    defined: dict[str, str] = {}  # id -> `file:line` of its `id`
    for path in sorted(directory.glob("*.yaml")):
        name = f"{directory.name}/{path.name}"  # as the policies folder's other errors name a file
        try:
            source = load(path, name=name)
            check_schema(source, "valueset.schema.json")
        except SourceError as exc:
            raise ValueSetError(str(exc)) from None
        value_set = compile_value_set(source.data, name)
        if value_set.id in defined:
            where = source.at(("id",))
            raise ValueSetError(
                f"{where}: id: value set id '{value_set.id}' is already used ({defined[value_set.id]})"
            )
        defined[value_set.id] = source.at(("id",))
        value_sets.append(value_set)
    return Terminology(value_sets, assessment_codes, qualified)
