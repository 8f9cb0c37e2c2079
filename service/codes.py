"""Code-system normalisation: every alias an EHR may send maps to one short system key.

The clinical data contract (section 1) lists the accepted `Coding.system` values. Everything
downstream (order recognition, the PatientRecord, value sets) speaks only the short keys below,
so an alias is handled in exactly one place.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from service.shapes import as_str, dicts

ICD10CM = "icd10cm"
SNOMED = "snomed"
RXNORM = "rxnorm"
LOINC = "loinc"
LOINC_CODE = re.compile(r"[0-9]{1,7}-[0-9]")  # a LOINC code: its number, a hyphen, its check digit
CPT = "cpt"
HCPCS = "hcpcs"
ASSESSMENT = "assessment"
PAYER_ID = "payer-id"

ASSESSMENT_SYSTEM = "http://idds-crd.org/fhir/CodeSystem/idds-assessment"
# The codes themselves are data: policies/assessment-codes.yaml (service/assessments.py).
# a hyphen however it is typed: ASCII, Unicode hyphens and dashes (U+2010-2015), minus signs, a soft
# hyphen, a zero-width space
HYPHENS = r"\-\u2010-\u2015\u2212\ufe63\uff0d\u00ad\u200b"


def negated(phrase: str, negation: str = r"(?:non|not)") -> re.Pattern[str]:
    """`phrase` (a regular expression) negated by the words before it: "non-Medicare", "not FEP",
    "non-implantable pulse generator", with any space or hyphen between; case-insensitive."""
    return re.compile(rf"\b{negation}[\s{HYPHENS}]*(?:{phrase})", re.IGNORECASE)


PAYER_ID_SYSTEM = "http://idds-crd.org/fhir/sid/payer-id"

# The URL the service writes each of these systems with (coverage information, suggested orders,
# searches); SYSTEM_ALIASES reads the other spellings as well.
CANONICAL_SYSTEM = {
    CPT: "http://www.ama-assn.org/go/cpt",
    HCPCS: "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
    LOINC: "http://loinc.org",
}
SYSTEM_ALIASES: dict[str, str] = {
    **{url: name for name, url in CANONICAL_SYSTEM.items()},
    "http://hl7.org/fhir/sid/icd-10-cm": ICD10CM,
    "http://hl7.org/fhir/sid/icd-10": ICD10CM,
    "http://snomed.info/sct": SNOMED,
    "http://www.nlm.nih.gov/research/umls/rxnorm": RXNORM,
    "urn:oid:2.16.840.1.113883.6.12": CPT,
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": HCPCS,
    "https://bluebutton.cms.gov/resources/codesystem/hcpcs": HCPCS,
    "urn:oid:2.16.840.1.113883.6.285": HCPCS,
    ASSESSMENT_SYSTEM: ASSESSMENT,
    PAYER_ID_SYSTEM: PAYER_ID,
}

_CASE_INSENSITIVE = {ICD10CM, HCPCS}

# A participant's role (R4 Appointment.participant.type, 0..*, bound extensibly to encounter-participant-type:
# v3 ParticipationType's codes and http://hl7.org/fhir/participant-type's) that only someone other than the
# patient takes, by system: a participant so typed is not the Appointment's patient, unless its actor says
# it is a Patient or another of its codings of these systems says another role (`not_the_patients_role`)
# (service/appointments.py `whose_appointment`, review30c item 4: a display-only attender made the Appointment
# one whose patient cannot be told). Not PART (a participation of any kind: the patient's too), nor CALLBCK (a
# callback contact may be the patient).
_NOT_THE_PATIENTS_V3 = frozenset(("ADM", "ATND", "CON", "DIS", "ESC", "PPRF", "PRF", "REF", "SPRF"))
NOT_THE_PATIENTS_ROLES: Mapping[str, frozenset[str]] = {
    "http://terminology.hl7.org/CodeSystem/v3-ParticipationType": _NOT_THE_PATIENTS_V3,
    "http://hl7.org/fhir/v3/ParticipationType": _NOT_THE_PATIENTS_V3,  # as STU3 wrote the system
    "http://hl7.org/fhir/participant-type": frozenset(("translator", "emergency")),
}


class RouteWords(Protocol):
    """The words of the routes that are none of the neuraxial ones (oral, intravenous, transdermal...):
    data, the route value sets' words (`Terminology.other_routes`, service/terminology.py): `Routes.other`."""

    def matches_text(self, text: str) -> bool: ...


@dataclass(frozen=True)
class Routes:
    """What a drug order's route can say of the pump's drug (contract §2: route SNOMED 72607000
    intrathecal or 404820008 epidural). Data, compiled once by the Terminology (`Terminology.routes`):
    the `route-neuraxial` value set's SNOMED codes (`neuraxial`), its words (`words`: "intrathecal",
    "epidural", "intraspinal"), and the codes it says tell neither (`tells_neither`: SNOMED 418418000
    Intraspinal route, intrathecal or epidural without saying which, or another route into the spine,
    read by its words); the other route value sets' words (`other`); and the texts that say a neuraxial
    route when they are a route's whole text, as written (`whole_texts`: "IT", never "it" nor "apply it"),
    or stand, so written, before what the drug is given through (ROUTE_DEVICES: "IT pump", `says_whole`)."""

    neuraxial: frozenset[str]
    words: tuple[str, ...]
    tells_neither: frozenset[str]
    other: RouteWords
    whole_texts: frozenset[str] = frozenset()
    # the neuraxial words, negated ("not for intrathecal use", "non-epidural"): said, they do not count
    unsaid: re.Pattern[str] = field(init=False, repr=False, compare=False)
    # one of `whole_texts` as written, then what a drug is given through, any case, across spaces or a hyphen
    # (or "via", ROUTE_DEVICES_ACROSS): "IT pump", "IT Catheter", "IT-pump", "IT via pump"; its group
    # `pronoun` the verb before it, when one of ROUTE_OBJECT_VERBS ("IV - GIVE IT INFUSION": "IT" is the
    # verb's object then, not the route, in a text all in capitals naming another route: `says_whole`)
    devices: re.Pattern[str] = field(init=False, repr=False, compare=False)
    # no word holds a space: then taking out what `unsaid` matches (each match becomes one space) never
    # makes a word appear that the text did not hold
    unspaced: bool = field(init=False, repr=False, compare=False)
    # what a dosage whose route is not an object says (`neuraxial_route` of None: no code, no words;
    # None, unless the other routes' words match an empty text): read once, not for every such dosage
    unrouted: bool | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        words = "|".join(re.escape(word) for word in self.words) or r"(?!)"
        object.__setattr__(self, "unsaid", negated(words, r"(?:non|not(?:\s+for)?)"))
        object.__setattr__(self, "unspaced", not any(" " in word for word in self.words))
        wholes = "|".join(re.escape(text) for text in sorted(self.whole_texts, key=len, reverse=True))
        through = "|".join(sorted(ROUTE_DEVICES))
        verbs = "|".join(sorted(ROUTE_OBJECT_VERBS))
        across = "|".join(sorted(ROUTE_DEVICES_ACROSS))
        devices = (
            rf"(?<!\w)(?:(?P<pronoun>{verbs})\s+)?(?:{wholes or '(?!)'})"
            rf"(?:\s+(?:(?i:{across})\s+)?|[{_JOINING}])(?i:{through})\b"
        )
        object.__setattr__(self, "devices", re.compile(devices))
        object.__setattr__(self, "unrouted", neuraxial_route(None, self))

    def says_neuraxial(self, text: str) -> bool:
        """Words that say intrathecal or epidural, anywhere in `text` ("intrathecally"); a negated one
        ("not for intrathecal use") does not count. A text holding none of the words is not searched
        for negations (the pattern starts with no literal, so `re` tries every position of it): most of
        a chart's drug names and routes say neither."""
        lowered = text.lower()
        if self.unspaced:
            for word in self.words:  # a loop, not `any` over a generator: read for every drug order
                if word in lowered:
                    break
            else:
                return False
        words = self.unsaid.sub(" ", lowered)
        return any(word in words for word in self.words)

    def says_whole(self, text: str) -> bool | None:
        """Whether a route's text (`route_texts`) says the route by one of `whole_texts`, as written: the
        whole of it ("IT", "I.T.", "IT (not IV)": `_as_whole_text`), or before what the drug is given
        through (ROUTE_DEVICES: "IT pump", "via IT catheter", "IT-pump"; never "it", "give it via pump").
        None where it says it only as the object of a verb in a text all in capitals ("GIVE IT INFUSION":
        ROUTE_OBJECT_VERBS), which is the pronoun where the route names another route ("IV - GIVE IT
        INFUSION"), the route's texts read together (`names_another_route`, `neuraxial_route`), and the
        route where it names none ("GIVE IT INFUSION", "START IT INFUSION AT 50 MCG/DAY": no route for the
        pronoun's drug to be given by, the lead's decision, s32); in a text with a small letter, "IT" is no
        pronoun: "Morphine 1 mg/mL: GIVE IT INFUSION via pump", nor written with dots or in brackets: "GIVE
        I.T. PUMP", "GIVE (IT) CATHETER" (True)."""
        whole = _as_whole_text(text)
        if whole in self.whole_texts:
            return True
        capitals = not any(char.islower() for char in text)  # the pronoun "IT" is in such a text only
        pronouns = 0
        for sentence in _sentences(text):
            read = 0
            for found in self.devices.finditer(_as_whole_text(sentence)):
                if not (found["pronoun"] and capitals):
                    return True
                read += 1
            # a verb's object only as written, "GIVE IT PUMP": once its dots and brackets are out, "GIVE I.T.
            # PUMP" and "GIVE (IT) CATHETER" read so too, but no pronoun is so written (review32c)
            if read and read > sum(1 for found in self.devices.finditer(sentence) if found["pronoun"]):
                return True
            pronouns += read
        return None if pronouns else False

    def names_another_route(self, text: str) -> bool:
        """Whether `text` (a route's texts, its text and every coding's display, read together as a
        concept's are: `concept_texts`, `neuraxial_route`), once each verb and its object "IT" before what the
        drug is given through is out ("GIVE IT INFUSION": `devices`' group `pronoun`), names a route by the
        other routes' words (`other`: "IV", "oral", "SC"), the route the pronoun's drug is given by: "IV -
        GIVE IT INFUSION OVER 30 MIN" does, and "GIVE IT INFUSION" beside a coding displayed "Intravenous";
        "START IT INFUSION AT 50 MCG/DAY" and "STOP IT PUMP" do not (`says_whole`). One search of the text,
        then the other routes' words read once: once per route."""
        rest = self.devices.sub(lambda found: " " if found["pronoun"] else found[0], text)
        return self.other.matches_text(rest)

    def names_a_device(self, whole: str) -> bool:
        """Whether one word, read as a whole text (`_as_whole_text`), is one of `whole_texts` hyphened to
        what the drug is given through: "IT-pump", a route word a negation takes back ("no IT-pump")."""
        found = self.devices.fullmatch(whole)
        return found is not None and not found["pronoun"]


UNNAMED = "unnamed"


@dataclass(frozen=True, slots=True)
class Code:
    """A coding reduced to (system key, normalised code) plus the display for evidence text."""

    system: str
    code: str
    display: str | None = None


def system_key(system: str | None) -> str | None:
    """The short key for a `Coding.system`, or None when the system is not one we read."""
    if not system:
        return None
    return SYSTEM_ALIASES.get(system.strip())


def normalise_code(system: str, code: str) -> str:
    """Canonical form of a code: ICD-10-CM undotted-agnostic upper case, HCPCS upper case."""
    code = code.strip()
    if system in _CASE_INSENSITIVE:
        code = code.upper()
    return code


def icd10_key(code: str) -> str:
    """ICD-10-CM codes compare by prefix without the dot (`M96.1` and `M961` are the same)."""
    return code.replace(".", "").upper()


def codings(concept: Any) -> Iterator[Code]:
    """The recognised codings of a CodeableConcept (or a bare Coding), skipping malformed ones."""
    if not isinstance(concept, dict):
        return
    items = concept.get("coding") if "coding" in concept else [concept]
    for coding in dicts(items):
        system = coding.get("system")
        key = system_key(system) if isinstance(system, str) else None
        code = coding.get("code")
        if key is None or not isinstance(code, str) or not code.strip():
            continue
        yield Code(key, normalise_code(key, code), as_str(coding.get("display")))


def not_the_patients_role(types: Any) -> bool:
    """Whether a participant's `type` (its CodeableConcepts, or one written in the list's place) says a role
    only someone other than the patient takes: one of its codings is in `NOT_THE_PATIENTS_ROLES` (its system
    and code as written; a role by its text alone, or in a system not listed, says nothing), and no other
    coding of a system listed there says another role (SBJ, the subject, or PART: a role the patient may
    take), which contradicts it: whose role it is cannot be told then (review31c LOW 4: typed SBJ and ATND,
    a display-only participant was read as not the patient)."""
    concepts = types if isinstance(types, list) else [types]
    listed = False
    for concept in dicts(concepts):
        for coding in dicts(concept.get("coding")):
            system, code = coding.get("system"), coding.get("code")
            if not isinstance(system, str) or not isinstance(code, str):
                continue
            roles = NOT_THE_PATIENTS_ROLES.get(system.strip())
            if roles is None:
                continue
            if code.strip() not in roles:
                return False
            listed = True
    return listed


def concept_texts(concept: Any) -> list[str]:
    """Each human-readable text of a CodeableConcept, as written: its text and every coding's display."""
    if not isinstance(concept, dict):
        return []
    parts: list[str] = []
    if isinstance(concept.get("text"), str):
        parts.append(concept["text"])
    for coding in dicts(concept.get("coding")):
        if isinstance(coding.get("display"), str):
            parts.append(coding["display"])
    return parts


def concept_text(concept: Any) -> str:
    """All human-readable words of a CodeableConcept: its text and every coding's display."""
    return " | ".join(concept_texts(concept))


def first_display(concept: Any, found: Iterable[Code] = ()) -> str:
    """A short human label for a concept: its text, else the first display, else the first code."""
    if isinstance(concept, dict) and isinstance(concept.get("text"), str) and concept["text"].strip():
        return concept["text"].strip()
    candidates = list(found) or list(codings(concept))
    for code in candidates:
        if code.display:
            return code.display
    return code_words(candidates[0].system, candidates[0].code) if candidates else UNNAMED


def code_words(system: str, code: str) -> str:
    """A code as a card names it by its system, where no words of the chart name it ("CPT 33206",
    "SNOMED 441509002"): a record's label with no display (`first_display`), and the implant a removal not
    read may undo (engine/checks/devices.py), an order's label (service/orders.py) and the sandbox's refusal
    of two kits placing one code (service/sandbox/orders.py). `code` may be several of one system ("CPT 33206,
    33207")."""
    return f"{system.upper()} {code}"


# What a negation takes back of a route's words, as data (docs/api.md and policies/README.md say it). Before
# the words it negates, one of ROUTE_NEGATIONS takes back the route words after it and the fillers between
# them (ROUTE_FILLERS: how a drug is given too, "do not administer intrathecally"), up to the first word that
# is neither, across spaces, slashes (a slash lists routes, whatever its spaces: "no IV / IM" is neither) and
# a hyphen joining words only (not a dash between spaces: "No IV - intrathecal only" is intrathecal): "no IM",
# "IM not IV", "not for intrathecal use", "do not give IV", "not IV or IM", "no IV/IM", "SC (not IT)"; "not
# only IM" and "no more than 1 mg" take back nothing. Either way a scope crosses a comma in a list of routes
# one of ROUTE_LIST_ENDS closes ("not for IV, IM, or intrathecal use", "IV, IM and SC contraindicated"), no
# other ("no IV, intrathecal" and "IT, not IV" are intrathecal), nor one beside a word of another clause
# (`_list_item`: "Avoid IV, use intrathecal or epidural", "Give intrathecally, IV or IM contraindicated"
# are intrathecal), and stops before a route word one of ROUTE_AFFIRMATIONS follows ("No IV and intrathecal
# only" is intrathecal). An abbreviation in brackets right after its route word (or the word after its
# abbreviation) is of its item, its brackets no phrase's end ("Not for intravenous (IV), intramuscular (IM),
# or intrathecal (IT) use" and "Not for IV (intravenous) use" say nothing: `_glosses_unbracketed`).
# Hyphened to a word ("non-preserved", "no-IV", "non-epidural") it takes back that word alone:
# "non-preserved intrathecal" is intrathecal. After the words it negates, one of
# ROUTE_NEGATIONS_AFTER that ends its phrase (nothing after it but a closing bracket, up to `,` `;` `|`
# `[` `]` or the end; or its sentence's end, a dot then a space: "IV contraindicated. Give orally" is oral;
# after "no.", a word of letters only, ROUTE_NEGATIONS_ABBREVIATED, not one saying the number,
# ROUTE_NUMBER_WORDS, `_ends_its_phrase`) takes back the
# route words and fillers before it, across spaces, hyphens, colons, brackets and a question mark to the word
# next to it ("intrathecal: no", "intrathecal contraindicated", "intrathecal (avoid)", "epidural - avoid"),
# past it spaces and slashes only ("IV/IM: no", "Intrathecal / IV contraindicated": neither, the lead's
# decision of review30j; "Intrathecal (IV contraindicated)" is intrathecal). No
# scope crosses a word ending a sentence ("IV."; not "I.V.", nor ROUTE_ABBREVIATIONS' "inj."). A phrase
# ends at `,` (but in a list of routes) `;` `|` `(` `)` `[` `]` or "but".
# "neither" too: "neither IV nor IM" says no route, "neither IV nor IM, intrathecal only" is intrathecal
# (review31b L5)
ROUTE_NEGATIONS = frozenset({"no", "not", "non", "never", "neither", "avoid", "without"})
ROUTE_NEGATIONS_AFTER = frozenset(
    {"no", "not", "never", "avoid", "avoided", "contraindicated"}
)  # not "discontinued": "IV discontinued" says the drug was given IV, then stopped (review30h)
# of those, the ones that with their dot are also an abbreviation ("no." for "number": "IT pump no. 2"):
# only there may the dot after one end no sentence (`_ends_its_phrase`); after any other, or after "no"'s
# closing bracket, its dot then a space ends its sentence, whatever follows ("IV contraindicated. 2.5 mg PO")
ROUTE_NEGATIONS_ABBREVIATED = frozenset({"no"})
# after such an abbreviation's dot, a word of letters that says the number, as written, so its dot ends no
# sentence (the lead's decision on review33c F1): "of" in small letters ("IT pump no. of refills 3",
# "Intrathecal infusion: No. of doses 1"; "IV: no. Of note, give PO" ends its sentence), or a Roman numeral,
# a word made only of ROUTE_NUMERAL_LETTERS in capitals ("IT catheter no. II", "IT catheter no. IV")
ROUTE_NUMBER_WORDS = frozenset({"of"})
ROUTE_NUMERAL_LETTERS = frozenset("IVX")
# the abbreviation so read, as written: not "NO.", in capitals where every word is ("INTRATHECAL: NO. IV ONLY"
# is IV, as "Intrathecal: no. IV only" is not told apart from "IT catheter no. IV" by its capitals)
ROUTE_NUMBER_ABBREVIATIONS = frozenset({"no", "No"})
# how a drug is given, written short with a dot that ends no sentence: "Do not admin. intrathecally" and
# "not for inj. intrathecal" are no intrathecal route (review30j: read as one, where 80c3d0b said nothing)
ROUTE_ABBREVIATIONS = frozenset({"inj", "admin", "adm"})
# the words that join the last route of a list to the others ("IV and IM", "IV, IM, or SC"): a list that one
# closes is negated whole, across its commas too (review30h: "IV and IM contraindicated" was IV, "Not for
# intravenous, intramuscular, or intrathecal use" intrathecal). "or" and "nor" are fillers too ("not for IV
# or for IM use"); "and" is in a scope only before a route word: "No IV and give orally" is oral ("and"
# starts another clause there)
ROUTE_LIST_ENDS = frozenset({"and", "or", "nor"})
# after a route word, what says that route is given, so no negation takes it back: "No IV and intrathecal
# only", "no IV, IM or intrathecal only" are intrathecal ("not only IM" is IM: "only" is no route word)
ROUTE_AFFIRMATIONS = frozenset({"only"})
# a word that ends a phrase as a mark does (a scope stops at it, as at any word neither a route's nor a
# filler): a list of routes before it ends its phrase, so a negation before a list of three routes or more
# takes it back whole ("Not for IV administration, IM, or intrathecal but oral" is oral: `_scope`)
ROUTE_PHRASE_ENDS = frozenset({"but"})
# what a drug is given through ("via pump"), a filler; after a route's whole text ("IT", `Routes.whole_texts`)
# as written, it says that route in a longer text: "IT pump", "via IT catheter", "IT infusion" are
# intrathecal (review30j), as "IT" alone is; "give it via pump" is not ("it", the pronoun)
ROUTE_DEVICES = frozenset({"pump", "catheter", "infusion"})
# the words between such a whole text and what the drug is given through that keep it so said (the lead's
# decision on review33c F2): "IT via pump", "IT via catheter" are intrathecal as "IT pump" is ("give it via
# pump" is not: "it", the pronoun; "GIVE IT VIA PUMP" is read as "GIVE IT PUMP" is, ROUTE_OBJECT_VERBS)
ROUTE_DEVICES_ACROSS = frozenset({"via"})
# verbs that take an object, as written in capitals: right after one, "IT" is the pronoun, its object, in a
# text written all in capitals (no small letter in it: the lead's decision, s32) that names another route,
# the one the pronoun's drug is given by (`Routes.names_another_route`, the lead's decision, s32), not the
# route before what the drug is given through ("IV - GIVE IT INFUSION OVER 30 MIN" is intravenous, review31b
# L2); "IT pump", "via IT catheter", "GIVE IT INFUSION", "START IT INFUSION AT 50 MCG/DAY" and "STOP IT PUMP"
# (no other route named), "Give IT infusion" (the verb not in capitals, "IT" is), "Morphine 1 mg/mL: GIVE IT
# INFUSION via pump" (a text with small letters, where "it" would be so written: review32c), "GIVE I.T. PUMP"
# and "GIVE (IT) CATHETER" (no pronoun is written with dots or in brackets) and "REFILL IT PUMP" (what is
# done to a pump) are intrathecal
ROUTE_OBJECT_VERBS = frozenset(
    {"GIVE", "TAKE", "USE", "INFUSE", "INJECT", "ADMINISTER", "APPLY", "MIX", "DILUTE", "RUN", "HANG"}
    | {"START", "STOP"}
)
# how a route's drug is given, after its route word in an item of a list of routes ("Not for IV push, IM, or
# intrathecal use", "IV bolus, IM or SC contraindicated", "Not for IV drip, IM, or intrathecal use"): beside
# a list's comma as its route word is; another filler is only where the next item repeats it, or in a list
# of three routes or more ("Not for IV administration, IM, or intrathecal": `_an_items_filler`; after a
# negation, where the list ends its phrase: "No IV use, IT, epidural, or SC preferred" is intrathecal,
# `_scope`), so "Not for IV use, for intrathecal or epidural use only" and "Not for IV use, intrathecal or
# epidural" are intrathecal
ROUTE_MANNERS = frozenset({"push", "bolus", "injection", "infusion", "drip"})
ROUTE_FILLERS = frozenset(
    {"use", "used", "for", "by", "via", "route", "routes", "given", "give", "to", "be", "or", "nor", "the"}
    # how a drug is given, said between a negation and its route (review30h: "do not administer
    # intrathecally", "not intended for IM use", "not for intrathecal injection")
    | {"administer", "administered", "administering", "administration", "inject", "injected", "injecting"}
    | {"injection", "infuse", "infused", "infusion", "intended", "recommended", "approved", "indicated"}
    | ROUTE_MANNERS  # "not for IV push or IM", "not for intrathecal bolus or epidural", "no IV drip"
    | ROUTE_ABBREVIATIONS
    | ROUTE_DEVICES  # "IT pump contraindicated", "not via intrathecal catheter"
)
# the hyphens that join two words into one ("sub-q", "non-preserved"); not a dash (figure, en, em dash,
# horizontal bar: U+2012 to U+2015), which ends what is said before it even with no space around it
# ("Intrathecal\u2014IV contraindicated", "No IV\u2014intrathecal only": review30h)
_JOINING = r"\-\u2010\u2011\u2212\ufe63\uff0d\u00ad\u200b"
_ROUTE_WORD = re.compile(rf"\w+(?:[.'{_JOINING}]\w+)*\.?")  # "IV", "I.V.", "sub-q", "non-preserved"
_NEGATION_WORD = re.compile(
    r"\b(?:" + "|".join(sorted(ROUTE_NEGATIONS | ROUTE_NEGATIONS_AFTER)) + r")\b", re.IGNORECASE
)
_HYPHENED = re.compile(rf"(?:{'|'.join(sorted(ROUTE_NEGATIONS))})[{_JOINING}]", re.IGNORECASE)
# what a negation's scope crosses after it: spaces and slashes ("no IV/IM", "no IV / IM"), or a hyphen
# joining two words ("no-IV"); not a dash between spaces, which ends what it says ("No IV - intrathecal
# only" is intrathecal: review30h)
_FORWARD_GAP = re.compile(rf"[\s/]*|[/{_JOINING}]+")
# what it crosses before it, negating what was said: to the word it negates, a colon, bracket, question
# mark or dash too ("intrathecal: no", "intrathecal (avoid)", "epidural - avoid"); past that word,
# spaces and slashes only ("IV/IM contraindicated", "IV / IM contraindicated", "IV or IM: no"), so a
# bracket, colon or dash that ends the phrase before keeps it ("Intrathecal (IV contraindicated)", "Oral -
# IV: no": review30h)
_BACKWARD_GAP = re.compile(rf"[\s/:()?{HYPHENS}]*")
_BACKWARD_WITHIN = re.compile(r"[\s/]*")
# a comma between two words, crossed either way in a list of routes only (`_list_starts`)
_LIST_COMMA = re.compile(r"\s*,\s*")
# an opening bracket between a route word and its abbreviation (or an abbreviation and its word), and the
# closing one after it (`_abbreviates`)
_OPENING = re.compile(r"\s*(?P<bracket>\()\s*")
_CLOSING = re.compile(r"\s*\)")
# a word ending a sentence (its one dot, not an abbreviation's: "I.V.", "inj."): no scope crosses it
_SENTENCE_END = re.compile(r"[^.]+\.")
_AFTER_LAST = re.compile(r"[\s.)]*(?:[,;|\[\]]|$)")  # nothing more in the phrase: the negation ends it
# or it ends its sentence: its one dot right after it or its closing brackets, then a space ("IV
# contraindicated. Give orally", "Intrathecal (IV contraindicated). Oral OK", "IV contraindicated. 2.5 mg
# PO", "1) IV contraindicated. 2) PO"); after the dot of one of ROUTE_NEGATIONS_ABBREVIATED, written so
# ("no."), a word of letters only: before a number, or a word with digits, the dot may be an abbreviation's
# ("IT pump no. 2", "IT catheter no. A12": its number), so none ends there (`_ends_its_phrase`)
_SENTENCE_AFTER = re.compile(r"[\s)]*\.\s")
_SENTENCE_AFTER_ABBREVIATED = re.compile(r"\.\s+[^\W\d_]+\b")


def route_texts(route: Any, routes: Routes) -> list[str]:
    """A route's words (its text and every coding's display), their compatibility forms read plainly
    (NFKC: "intrathecal" written in full-width letters is "intrathecal", review29g), and what a negation
    takes back of them taken out (`_unnegated`: "no IM" is no intramuscular route, nor "not intrathecal"
    an intrathecal one, review29d L3; "non-preserved intrathecal" is intrathecal, review30c L1), as every
    reading of a route's words takes them: whether it is neuraxial (`neuraxial_route`) or injectable (the
    drug order's route text, service/record.py)."""
    return [_kept(text, routes) for text in _plain_texts(route)]


def _plain_texts(route: Any) -> list[str]:
    """A route's words as written (`concept_texts`), their compatibility forms read plainly (NFKC)."""
    return [unicodedata.normalize("NFKC", text) for text in concept_texts(route)]


def _kept(text: str, routes: Routes) -> str:
    """What `route_texts` keeps of one of a route's texts read plainly: what its negations take back out."""
    return _unnegated(text, routes) if _NEGATION_WORD.search(text) else text


def _says_a_route(words: str, routes: Routes) -> bool:
    """Whether `words` say a route: the neuraxial words, a whole text that is one ("IT"), another's, or a
    whole text hyphened to what the drug is given through ("IT-pump": `Routes.names_a_device`)."""
    if routes.says_neuraxial(words):
        return True
    whole = _as_whole_text(words)
    return whole in routes.whole_texts or routes.other.matches_text(words) or routes.names_a_device(whole)


def _unnegated(text: str, routes: Routes) -> str:
    """`text` with what its negations take back of its route words (ROUTE_NEGATIONS, ROUTE_NEGATIONS_AFTER,
    ROUTE_FILLERS: see there) each made a space."""
    words = list(_ROUTE_WORD.finditer(text))
    if "(" in text:  # read with the brackets of an abbreviation by its route word out: "intravenous (IV)"
        words = list(_ROUTE_WORD.finditer(_glosses_unbracketed(text, words, routes)))
    said = [word.group().lower().rstrip(".") for word in words]
    lists = _list_starts(words, said, routes) if "," in text else [False] * len(words)
    unsaid: list[tuple[int, int]] = []
    for i, word in enumerate(words):
        if _HYPHENED.match(said[i]):  # "non-preserved": its own word alone
            unsaid.append(word.span())
        elif said[i] in ROUTE_NEGATIONS and (last := _scope(words, said, lists, i, 1, routes)) is not None:
            unsaid.append((word.start(), words[last].end()))
        elif (
            said[i] in ROUTE_NEGATIONS_AFTER
            and _ends_its_phrase(word)
            and (first := _scope(words, said, lists, i, -1, routes)) is not None
        ):
            unsaid.append((words[first].start(), word.end()))
    kept, at = [], 0
    for start, end in sorted(unsaid):  # spans may overlap ("not IV: no"): each character once
        if end > at:
            kept.append(text[at : max(start, at)])
            at = end
    return " ".join([*kept, text[at:]]) if unsaid else text


def _ends_its_phrase(word: re.Match[str]) -> bool:
    """Whether a negation after the words it negates (one of ROUTE_NEGATIONS_AFTER, `word`) ends its phrase:
    nothing after it but closing brackets, dots and spaces, to `,` `;` `|` `[` `]` or the text's end
    (`_AFTER_LAST`: "intrathecal contraindicated", "intrathecal (avoid)"), or to its sentence's end, a dot
    then a space (`_SENTENCE_AFTER`: "IV contraindicated. Give orally", "IV contraindicated. 2.5 mg PO",
    "IV (no). 2 mg PO"); the dot of "no." (ROUTE_NEGATIONS_ABBREVIATED), an abbreviation's too, then a word
    of letters only (`_SENTENCE_AFTER_ABBREVIATED`: "IV: no. P.O. only"; not "IT pump no. 2", "IT catheter
    no. A12"), and none that says the number (`_says_the_number`: "IT pump no. of refills 3", "IT catheter
    no. II") unless the "no." answers a question ("Intrathecal? No. IV only")."""
    text, end = word.string, word.end()
    if _AFTER_LAST.match(text, end):
        return True
    if not word[0].endswith("."):
        return bool(_SENTENCE_AFTER.match(text, end))
    if word[0][:-1].lower() in ROUTE_NEGATIONS_ABBREVIATED:
        if (after := _SENTENCE_AFTER_ABBREVIATED.match(text, end - 1)) is None:
            return False
        # the whole word there, its dots too: "I.V." is no Roman numeral
        following = _ROUTE_WORD.match(text, after.end() - len(after[0][1:].lstrip()))
        answer = text[max(0, word.start() - 8) : word.start()].rstrip().endswith("?")
        return following is None or answer or not _says_the_number(word[0][:-1], following[0])
    return bool(_SENTENCE_AFTER.match(text, end - 1))


def _says_the_number(abbreviation: str, word: str) -> bool:
    """Whether a word of letters after the dot of "no." or "No." (ROUTE_NUMBER_ABBREVIATIONS, as written)
    says the number, as written: one of ROUTE_NUMBER_WORDS ("no. of doses"), or a Roman numeral, only
    ROUTE_NUMERAL_LETTERS ("no. II", "no. IV"); never after "NO." ("INTRATHECAL: NO. IV ONLY")."""
    if abbreviation not in ROUTE_NUMBER_ABBREVIATIONS:
        return False
    word = word.removesuffix(".")  # a sentence's end after it: "no. II."
    return word in ROUTE_NUMBER_WORDS or set(word) <= ROUTE_NUMERAL_LETTERS


def _scope(
    words: list[re.Match[str]], said: list[str], lists: list[bool], at: int, step: int, routes: Routes
) -> int | None:
    """The farthest word (`step` 1: after the negation at `at`; -1: before it) of the route words and fillers
    next to it, when they hold a route word; None when they hold none. Before it, a colon, bracket or dash
    is crossed to the word next to it only (`_BACKWARD_GAP`, then `_BACKWARD_WITHIN`); a comma in a list
    of routes only (before a word `lists` marks: `_list_starts`); no sentence's end (`_SENTENCE_END`).
    After it, a comma crossed by the serial rule alone (`_serially_only`) stays crossed only where the list
    ends its phrase, as this walk ends one: the scope stops at the text's end, a sentence's end, a mark it
    does not cross (a comma of no list, `;`, a bracket, a dash ...: "Not for IV administration, IM, or
    intrathecal use"), one of ROUTE_PHRASE_ENDS ("but") or "and" starting another clause (not before a route
    word: "... or intrathecal and give orally"); not at a word of another kind ("No IV use, IT,
    epidural, or SC preferred": the scope then ends at the filler before that comma, review31b's reading;
    the lead's decision, s32). Before it, the list ends at the negation, which ends its phrase."""
    last, routed, i = None, False, at + step
    item = None  # before it, the scope as it was at the last list comma crossed (`_list_item`)
    serial = None  # after it, the scope as it was at the first comma the serial rule alone crossed
    while 0 <= i < len(words):
        gap = _FORWARD_GAP if step == 1 else _BACKWARD_GAP if i == at - 1 else _BACKWARD_WITHIN
        first, second = min(i, i - step), max(i, i - step)  # the two words, in the text's order
        between = (words[first].end(), words[second].start())
        text = words[i].string
        crossing = gap.fullmatch(text, *between) is None
        listed = crossing and lists[second] and _LIST_COMMA.fullmatch(text, *between)
        if _ends_sentence(words[first][0]) or (crossing and not listed):
            break
        if listed and not _list_item(words, said, lists, first, second, routes):
            break
        if listed and step == -1:
            item = last
        elif listed and serial is None and _serially_only(words, said, lists, first, routes):
            serial = last
        if (two := _two_word_route(words, i, step, routes)) is not None:
            if _affirmed(words, said, max(i, two)):
                break
            last, routed, i = two, True, two + step
            continue
        if _says_a_route(words[i].group(), routes):
            if _affirmed(words, said, i):
                break
            last, routed = i, True
        elif (said[i] in ROUTE_LIST_ENDS and _joins_a_route(words, i, routes)) or (
            said[i] in ROUTE_FILLERS and (item is None or _an_items_filler(words, said, lists, i, routes))
        ):
            last = i
        else:
            # before a list's comma, an item holding more than route words ("Give intrathecally, IV or IM
            # contraindicated") is none of the list: the scope ends at the comma; after it, a list the serial
            # rule read ends no phrase before such a word: the scope ends at its first item's filler
            if serial is not None and said[i] not in ROUTE_PHRASE_ENDS | ROUTE_LIST_ENDS:
                last = serial
            last = item if item is not None else last
            break
        i += step
    return last if routed else None


def _serially_only(
    words: list[re.Match[str]], said: list[str], lists: list[bool], i: int, routes: Routes
) -> bool:
    """Whether the word at `i`, before a list's comma, is of the list's item by the serial rule alone
    (`_in_a_serial_list`): no route word, nor one of ROUTE_MANNERS after its route word, nor a filler the
    next item repeats (`_an_items_filler`'s other rules, which hold wherever the list ends)."""
    return (
        not _says_a_route(words[i].group(), routes)
        and not _manner_of_a_route(words, said, i, routes)
        and not _parallel(words, said, i, routes)
        and _in_a_serial_list(words, said, lists, i, routes)
    )


def _list_item(
    words: list[re.Match[str]], said: list[str], lists: list[bool], first: int, second: int, routes: Routes
) -> bool:
    """Whether the words either side of a list's comma (`first`, `second`) are route words, as a list of
    routes holds next to its commas ("IV, IM, or intrathecal"; before it, an item's filler after its route
    word too, `_an_items_filler`: "IV push, IM, or SC"): another filler beside it starts or ends another
    clause ("Not for IV use, for intrathecal or epidural use only", "Avoid IV, use intrathecal or epidural",
    review31b), whose routes no negation across the comma takes back. After the comma, one of
    ROUTE_LIST_ENDS may close the list ("IV, IM, or SC")."""
    return (
        _says_a_route(words[first].group(), routes) or _an_items_filler(words, said, lists, first, routes)
    ) and (said[second] in ROUTE_LIST_ENDS or _says_a_route(words[second].group(), routes))


def _an_items_filler(
    words: list[re.Match[str]], said: list[str], lists: list[bool], i: int, routes: Routes
) -> bool:
    """Whether the word at `i`, before a list's comma (or in a scope read backwards, past one), is a filler
    of the list's item, right after its route word: one of ROUTE_MANNERS ("IV push, IM, or SC"), one the
    next item repeats (`_parallel`: "IV use, IM use, or intrathecal use"), or any filler when the next item
    is a route word alone before another of the list's commas (`_in_a_serial_list`: "Not for IV
    administration, IM, or intrathecal")."""
    return (
        _manner_of_a_route(words, said, i, routes)
        or _parallel(words, said, i, routes)
        or _in_a_serial_list(words, said, lists, i, routes)
    )


def _in_a_serial_list(
    words: list[re.Match[str]], said: list[str], lists: list[bool], i: int, routes: Routes
) -> bool:
    """Whether the word at `i` is a filler right after its route word, before a list's comma, that the next
    item, a route word alone, follows before another list's comma: "Not for IV administration, IM, or
    intrathecal", "IV use, IM, SC, or intrathecal contraindicated" are lists of three routes or more, taken
    back whole (review31e L1). With two items after the comma the filler may end a clause, whose routes
    stay: "Not for IV use, intrathecal or epidural" and "Not for IV administration, IM or intrathecal" are
    intrathecal (review31b's rule); so do a filler not right after a route word ("Intrathecal via pump, IM,
    IV or SC contraindicated") and an item of more than one word ("Not for IV use, use intrathecal, ...").
    After a negation, a list so read is taken back whole only where it ends its phrase (`_scope`: "No IV use,
    IT, epidural, or SC preferred" is intrathecal, the lead's decision, s32)."""
    j = i + 1
    return (
        j + 1 < len(words)
        and said[i] in ROUTE_FILLERS
        and lists[j]
        and lists[j + 1]
        and _LIST_COMMA.fullmatch(words[i].string, words[i].end(), words[j].start()) is not None
        and _LIST_COMMA.fullmatch(words[j].string, words[j].end(), words[j + 1].start()) is not None
        and _right_after_a_route(words, i, routes)
        and _says_a_route(words[j].group(), routes)
    )


def _parallel(words: list[re.Match[str]], said: list[str], i: int, routes: Routes) -> bool:
    """Whether the word at `i`, before a list's comma, is a filler right after its route word that the next
    item repeats right after its own ("IV use, IM use, or intrathecal use", "IV route, IM route and
    intrathecal route": review31e), as a list's items are written alike; not "Not for IV use, for
    intrathecal or epidural use only" (another clause)."""
    j = i + 2 if i + 1 < len(words) and said[i + 1] in ROUTE_LIST_ENDS else i + 1
    return (
        said[i] in ROUTE_FILLERS
        and _right_after_a_route(words, i, routes)
        and j + 1 < len(words)
        and said[j + 1] == said[i]
        and _right_after_a_route(words, j + 1, routes)
    )


def _right_after_a_route(words: list[re.Match[str]], i: int, routes: Routes) -> bool:
    """Whether the word at `i` follows a route word across spaces alone."""
    return (
        i > 0
        and not words[i].string[words[i - 1].end() : words[i].start()].strip()
        and _says_a_route(words[i - 1].group(), routes)
    )


def _manner_of_a_route(words: list[re.Match[str]], said: list[str], i: int, routes: Routes) -> bool:
    """Whether the word at `i` is one of ROUTE_MANNERS right after a route word: "IV push", "IM bolus"."""
    return said[i] in ROUTE_MANNERS and _right_after_a_route(words, i, routes)


def _ends_sentence(word: str) -> bool:
    """Whether `word`, as written, ends a sentence: its one dot, not an abbreviation's ("IV."; not "I.V.",
    nor ROUTE_ABBREVIATIONS' "inj.")."""
    return bool(_SENTENCE_END.fullmatch(word)) and word.lower().rstrip(".") not in ROUTE_ABBREVIATIONS


def _list_starts(words: list[re.Match[str]], said: list[str], routes: Routes) -> list[bool]:
    """For each word, whether a comma before it is one of a list of routes: from it on, across route words,
    fillers and the commas between them, one of ROUTE_LIST_ENDS joins a route word after it ("IM, or
    intrathecal use" in "not for IV, IM, or intrathecal use"; not "intrathecal" in "no IV, intrathecal").
    Told once per text, from its last word back (each word's answer is the next one's where it goes on), so
    a text of many commas is read in time linear in its words, not quadratic (review31b: a 10 KB route text
    "IV, IV, … or IM contraindicated" took 9 s)."""
    starts = [False] * len(words)
    for i in range(len(words) - 1, -1, -1):
        if said[i] in ROUTE_LIST_ENDS:
            starts[i] = _joins_a_route(words, i, routes)
        elif i + 1 < len(words) and starts[i + 1]:
            between = (words[i].end(), words[i + 1].start())
            starts[i] = (
                (said[i] in ROUTE_FILLERS or _says_a_route(words[i].group(), routes))
                and not _ends_sentence(words[i][0])
                and bool(
                    _FORWARD_GAP.fullmatch(words[i].string, *between)
                    or _LIST_COMMA.fullmatch(words[i].string, *between)
                )
            )
    return starts


def _joins_a_route(words: list[re.Match[str]], i: int, routes: Routes) -> bool:
    """Whether the word at `i`, one of ROUTE_LIST_ENDS, joins a route word after it, across a space: "IV and
    IM", "IM, or intrathecal"; not "no IV and give orally", where it starts another clause."""
    j = i + 1
    return (
        j < len(words)
        and not words[i].string[words[i].end() : words[j].start()].strip()
        and (_says_a_route(words[j].group(), routes) or _two_word_route(words, j, 1, routes) is not None)
    )


def _affirmed(words: list[re.Match[str]], said: list[str], i: int) -> bool:
    """Whether one of ROUTE_AFFIRMATIONS follows the route word at `i` ("intrathecal only"): the route is
    said, never in a negation's scope ("No IV and intrathecal only" is intrathecal)."""
    j = i + 1
    return (
        j < len(words)
        and said[j] in ROUTE_AFFIRMATIONS
        and not words[i].string[words[i].end() : words[j].start()].strip()
    )


def _sentences(text: str) -> list[str]:
    """`text` cut after each word ending a sentence (its one dot, `_ends_sentence`'s: "TAKE IT. INFUSION
    OVER 30 MIN" is two; not "I.T. pump", nor "inj."), so that what is said whole within one
    (`Routes.says_whole`) is not made of the end of one and the start of the next once the dots are out
    (review31b)."""
    cuts = [word.end() for word in _ROUTE_WORD.finditer(text) if _ends_sentence(word[0])]
    return [text[start:end] for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True)]


def _glosses_unbracketed(text: str, words: list[re.Match[str]], routes: Routes) -> str:
    """`text` with the brackets around an abbreviation right after its route word, or around a route word
    right after its abbreviation, made spaces, the same length (so every word keeps its place): "Not for
    intravenous (IV), intramuscular (IM), or intrathecal (IT) use" and "Not for IV (intravenous), IM
    (intramuscular), or IT (intrathecal) use" are read as lists of three routes, taken back whole, a bracket
    no phrase's end there (review31e L2; review32c). An abbreviation (`_abbreviates`) and its word are one
    route word alone in the brackets and the one before them, of the same kind, neuraxial or not; "no IV
    (IT)", "no IT (intravenous)", "SC (not IT)" and "Intrathecal (IV contraindicated)" keep their
    brackets. Each word and the spaces next to it are read a bounded number of times."""
    marks: list[int] = []
    for k in range(1, len(words)):
        route, short = words[k - 1], words[k]
        if (
            (opened := _OPENING.fullmatch(text, route.end(), short.start())) is not None
            and (closed := _CLOSING.match(text, short.end())) is not None
            and (
                _abbreviates(short.group(), route.group(), routes)
                or _abbreviates(route.group(), short.group(), routes)
            )
        ):
            marks += [opened.start("bracket"), closed.end() - 1]
    if not marks:
        return text
    chars = list(text)
    for at in marks:
        chars[at] = " "
    return "".join(chars)


def _abbreviates(short: str, word: str, routes: Routes) -> bool:
    """Whether `short` is an abbreviation of the route word `word`: shorter, its letters in the word's order
    from its first ("IV" of "intravenous", "I.T." of "intrathecal"; not "IM" of "IV"), both route words of
    one kind, neuraxial or not ("IT" of "intravenous" is none)."""
    letters = [letter for letter in short.lower() if letter.isalnum()]
    spelled = word.lower()
    if not letters or len(letters) >= len(spelled) or letters[0] != spelled[0]:
        return False
    rest = iter(spelled)
    return (
        all(letter in rest for letter in letters)
        and _says_a_route(short, routes)
        and _says_a_route(word, routes)
        and _neuraxial_word(short, routes) == _neuraxial_word(word, routes)
    )


def _neuraxial_word(word: str, routes: Routes) -> bool:
    """Whether a route word says a neuraxial route: a neuraxial word ("intrathecal"), a whole text ("IT")."""
    return routes.says_neuraxial(word) or _as_whole_text(word) in routes.whole_texts


def _two_word_route(words: list[re.Match[str]], i: int, step: int, routes: Routes) -> int | None:
    """The index of the second word when the word at `i` and the next one (`step`) say a route together
    and neither alone ("by mouth", "sub q"; not "only IM", whose "IM" is a route word itself), else None."""
    j = i + step
    if not 0 <= j < len(words) or any(_says_a_route(words[k].group(), routes) for k in (i, j)):
        return None
    near, far = sorted((words[i], words[j]), key=lambda word: word.start())
    return j if _says_a_route(f"{near.group()} {far.group()}", routes) else None


_NOT_OF_THE_WORDS = str.maketrans("", "", ".()[],;:")  # dots, brackets and phrase marks
# the spaces and dashes at an edge of a text ("IT - " once "no IV" is out), matched from the edge: from the
# start, and from the end of the text reversed, never searched for (`[...]+$` tried every position of a run
# of spaces within a text and read the run to its end from each: 100 KB of them took 53 s, review31e)
_EDGE_DASHES = re.compile(rf"[\s{HYPHENS}]*")


def _as_whole_text(text: str) -> str:
    """A route's text (`route_texts`) as a whole text is compared (`Routes.whole_texts`): dots, brackets
    and the marks a phrase ends with dropped ("I.T.", "IT.", and "IT (not IV)" or "IT, not IV" once the
    negation's words are taken out: review30c L2), trimmed of spaces and of the dashes a phrase ends with
    ("IT - no IV", "IT\u2014no IV": review30h); the case kept."""
    kept = text.translate(_NOT_OF_THE_WORDS)
    start, end = _EDGE_DASHES.match(kept).end(), len(kept) - _EDGE_DASHES.match(kept[::-1]).end()
    return kept[start:end] if start < end else ""


def _takes_back_another_route(written: str, kept: str, routes: Routes) -> bool:
    """Whether a route's text as written, read plainly (`written`, one of `_plain_texts`), names another route
    (`Routes.names_another_route`) that its negations take back, so that what is kept of it (`kept`,
    `route_texts`) names none: "NO IV - GIVE IT INFUSION", "GIVE IT INFUSION (NOT IV)", "GIVE IT PUMP. IV
    CONTRAINDICATED.". A text no negation took anything of is not read again: `neuraxial_route` reads the
    texts together once."""
    if written == kept:
        return False
    # read with its negation words out, as what it would say unnegated ("(NOT IV)": IV named, then taken back)
    unnegated = _NEGATION_WORD.sub(" ", written)
    return routes.names_another_route(unnegated) and not routes.names_another_route(kept)


def neuraxial_route(route: Any, routes: Routes) -> bool | None:
    """Whether a route (CodeableConcept) is intrathecal or epidural: True for a neuraxial route code
    (`routes.neuraxial`, SNOMED 72607000 or 404820008); a route coded in SNOMED is what its code says
    ("Oral (not for intrathecal use)" is oral: False), but a code that tells neither
    (`routes.tells_neither`, the intraspinal route's) does not. That one, one coded only the EHR's own
    way, or a typed one is read by its words: neuraxial ones (`routes.says_neuraxial`; a negated one,
    "non-intrathecal", not counting), or a text that is one of `routes.whole_texts` whole, as written
    ("IT", trimmed, its dots and full-width letters read plainly: "I.T."; not "it", nor "apply it"):
    True; its texts (its text and every coding's display, `route_texts`) are read together, as a concept's
    are (`concept_texts`): "IT" a verb's object in one ("GIVE IT INFUSION") is the pronoun where another
    names another route (a display "Intravenous": `Routes.says_whole`); those of another route
    (`routes.other`, the route value sets' words: oral, intravenous, tablet, "SC": False), else None, as
    for "Injection"."""
    codes = list(codings(route))
    if any(code.code in routes.neuraxial for code in codes):
        return True
    if any(code.system == SNOMED and code.code not in routes.tells_neither for code in codes):
        return False
    plain = _plain_texts(route)
    texts = [_kept(written, routes) for written in plain]  # `route_texts`
    pronoun = False  # "IT" a verb's object only in one of them ("GIVE IT INFUSION")
    settled = False  # one of those names another route and takes it back ("NO IV - GIVE IT INFUSION")
    for written, part in zip(plain, texts, strict=True):
        if (said := routes.says_whole(part)) is True:
            return True
        if said is None:
            pronoun = True
            settled = settled or _takes_back_another_route(written, part, routes)
    text = " | ".join(texts)
    # the route where a text "IT" is a verb's object in has taken back another route it names (it has
    # answered whether "IT" is the pronoun: no display brings that route back, the lead's decision on
    # review33c F3), or unless the route's texts, its text and every coding's display read together, name
    # another (a display "Intravenous": the pronoun)
    if pronoun and (settled or not routes.names_another_route(text)):
        return True
    if routes.says_neuraxial(text):
        return True
    if any(code.system == SNOMED for code in codes) or not routes.other.matches_text(text):
        return None
    return False


def neuraxial_order(resource: Mapping[str, Any], drug_text: str, routes: Routes) -> bool | None:
    """Whether a drug order (or statement) gives its drug intrathecally or epidurally, the one reading
    of contract §2's "intrathecal or epidural MedicationRequest": the pump's drug (service/infusates.py),
    and for the record a pump or trial drug, never a systemic drug trial (service/record.py). The routes
    it is given by decide, where one tells (`neuraxial_route`: True when one is intrathecal or epidural,
    False when the others are, oral or intravenous, by `routes.other`'s words); else its drug's own words
    (`drug_text`: "Baclofen 2000 MCG/ML Intrathecal Solution", "Injection, baclofen, 50 mcg for
    intrathecal trial": True); None when neither says. Of an order naming no dosage it reads nothing but
    `drug_text`, which the record's memo of it keys on (record.py, `by_words`): keep it so."""
    other = False  # a dosage's route says another route (oral, intravenous)
    for key in DOSAGES:
        if not (dosages := resource.get(key)):  # most orders of a chart name no dosage at all
            continue
        for dosage in dicts(dosages):
            route = dosage.get("route")
            said = neuraxial_route(route, routes) if isinstance(route, dict) else routes.unrouted
            if said:
                return True
            other = other or said is False
    if other:
        return False
    return True if routes.says_neuraxial(drug_text) else None


DOSAGES = ("dosageInstruction", "dosage")  # a MedicationRequest's dosages, a MedicationStatement's


def names_a_dosage(resource: Mapping[str, Any]) -> bool:
    """Whether a drug order or statement holds one of `DOSAGES` (most of a chart's name none: then
    `neuraxial_order` reads its drug's words alone, and the record has no route to read)."""
    return "dosageInstruction" in resource or "dosage" in resource
