"""The codes and words any policy can ever read of a chart record, compiled once per Terminology (issue 12).

A Synthea-sized chart holds hundreds of Procedures (dental care, screenings, prenatal visits) none of
which any policy reads: no criterion, trial, pump-in-place or removal test looks at a Procedure but by a
code of a value set, by what it used (a steroid) or by the devices it put in (`PatientRecord.before` takes
them out with the order it was done for). `build_record` asks `ReadCodes.reads` of a record's codes before
building its fact, and leaves out the record nothing can read (service/record.py `_procedure`), so that
neither the record nor the engine's every walk of it pays for it. The same codes, and the words a value
set names a concept by (`names`: a diagnosis is read by them too), answer which records carrying a
modifier extension this service does not understand are left out unnoticed, as changing nothing
(service/record.py `_read_by_no_policy`); the others are counted as records that could not be read.

`reads` answers for every value set of the terminology at once, whichever policies name them, and errs
only one way: a code it says is read may be read by none (an ICD-10-CM code under a prefix a value set
excludes), never the reverse. That way is safe for leaving a record out unbuilt, not for counting one
unreadable: the modifier rule asks `Terminology.reads` (exclusions honoured) and `undoes` instead, and
`names` reads a diagnosis's words only against the value sets the catalog's policies read a diagnosis's
words against (`Catalog.worded_diagnoses`, the no-condition test's, as `worded_conditions` reads them;
where the caller gives none, the value sets of diagnoses, those listing ICD-10-CM codes), never against a
route's or a device action's words ("Oral candidiasis" names no route: counted, it made a whole problem
list unread), nor a device's read only of Devices ("Pacemaker syndrome"). What
`reads` covers is `Terminology.reads` (a code of a value set, an assessment code) and the CPT codes of
the value sets' `removals` (a removal undoes a pump or device in place: service/engine/classify.py
`idds_in_place`, service/engine/checks/devices.py), which are listed as removals, not as a value set's
own codes.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Collection, Iterable

from service.codes import CPT, ICD10CM, RXNORM, Code, icd10_key
from service.terminology import Terminology


class ReadCodes:
    """The union of what every value set of a terminology matches, by system, and the assessment codes;
    and of the words the value sets of diagnoses name a concept by (`names`)."""

    def __init__(self, terminology: Terminology) -> None:
        flat: dict[str, set[str]] = {}
        prefixes: set[str] = set()
        rxnorm: set[str] = set()
        value_sets = [terminology[value_set_id] for value_set_id in terminology.ids()]
        for vs in value_sets:
            for system, codes in vs.codes.items():
                flat.setdefault(system, set()).update(codes)
            prefixes.update(vs.icd10_prefixes)  # with no exclusion: more, never fewer
            for ingredient in vs.ingredients:
                rxnorm.update(ingredient.products)
                if ingredient.code is not None:
                    rxnorm.add(ingredient.code)
            flat.setdefault(CPT, set()).update(vs.removals)
        flat[RXNORM] = rxnorm
        self._removals = frozenset(code for vs in value_sets for code in vs.removals)
        self._flat = {system: frozenset(codes) for system, codes in flat.items()}
        self._prefixes = tuple(sorted(prefixes))
        self._assessment = frozenset(terminology.assessment_codes)
        # the value sets a diagnosis's words may name (`names`): those of diagnoses, listing ICD-10-CM codes
        self._worded_sets = tuple(vs for vs in value_sets if vs.text_words and vs.icd10_prefixes)
        # their words, each as what a text holds literally wherever the word is named (`ValueSet.text_stems`:
        # `_names` tries a word only where its stem is in the lowered text): a text holding none is not read
        stems = sorted({stem for vs in self._worded_sets for stem in vs.text_stems if stem})
        self._stems = re.compile("|".join(map(re.escape, stems))) if stems else None

    def reads(self, codes: Iterable[Code]) -> bool:
        """Whether a policy may read any of `codes` (`Terminology.reads`, or a removal's CPT code)."""
        empty: frozenset[str] = frozenset()
        for code in codes:
            if code.code in self._assessment:
                return True
            if code.system == ICD10CM:
                if icd10_key(code.code).startswith(self._prefixes):
                    return True
            elif code.code in self._flat.get(code.system, empty):
                return True
        return False

    def undoes(self, codes: Iterable[Code]) -> bool:
        """Whether any of `codes` is a removal's CPT code (a value set's `removals`: 62365 undoes a pump)."""
        return any(code.system == CPT and code.code in self._removals for code in codes)

    def names(self, texts: Iterable[str], worded: Collection[str] | None = None) -> bool:
        """Whether a diagnosis whose words are `texts` (its label, its codings' displays) is named by a
        value set's words, as the engine reads them (`worded_conditions`: each text cut to WORDS_READ,
        `ValueSet.names_in_words`), for any value set of diagnoses: "Infection of tooth" is, "Gingivitis"
        and "Oral candidiasis" (a route's word) are not. `worded`: the ids of the value sets the catalog's
        policies read a diagnosis's words against (`Catalog.worded_diagnoses`), exactly; None: every value
        set of diagnoses, a superset ("Pacemaker syndrome", programmable-device's words, read of Devices)."""
        from service.engine.checks.common import WORDS_READ  # the engine's reading (it imports the record)

        words = " | ".join(text[:WORDS_READ] for text in texts)
        if self._stems is None or self._stems.search(words.lower()) is None:
            return False
        return any(vs.names_in_words(words) for vs in self._worded_sets if worded is None or vs.id in worded)


_COMPILED: weakref.WeakKeyDictionary[Terminology, ReadCodes] = weakref.WeakKeyDictionary()


def read_codes(terminology: Terminology) -> ReadCodes:
    """The terminology's `ReadCodes`, compiled on first use and kept as long as the terminology is."""
    compiled = _COMPILED.get(terminology)
    if compiled is None:
        compiled = _COMPILED[terminology] = ReadCodes(terminology)
    return compiled
