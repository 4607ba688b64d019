"""Query-intent and qualifier rules of the search engine (`bot.codes.search`).

* `normalize_query`: shorthand coders type for "with"/"without" ("w/o", "no").
* `query_intent`: the code set a query's own words ask for. Procedure words (PCS root
  operations, "-ectomy"/"-plasty" names, operative abbreviations) ask for ICD-10-PCS; drug,
  dose and supply words ("injection", "mg", "supply", "modifier") for HCPCS Level II; status
  words ("status post", "history of") for ICD-10-CM (the Z codes). The engine demotes codes of
  other sets (`INTENT_FACTOR`) only when exactly one set is asked for.
* `Qualifiers` / `qualifier_factor`: laterality, encounter, acuity and similar words are
  mutually exclusive: a title that says "left" when the query says "right" (and not "left")
  answers another question, as does "without wheels" for "walker with wheels".

Rules are about words, never about single queries; they run on normalised tokens
(`bot.codes.search_index.tokenize`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.codes.search_index import SYSTEM_INDEX, raw_words

_WITHOUT = re.compile(r"\bw/o\b|\bw/out\b|\bno\b", re.IGNORECASE)


# British spellings of medical words; the code sets spell them the American way.
_BRITISH = (
    (re.compile(r"\boe(?=[a-z]{3})"), "e"),  # oedema, oesophagus, oestrogen
    (re.compile(r"(?<=[a-z])aem"), "em"),  # haemorrhage, anaemia, leukaemia, ischaemia
    (re.compile(r"\b(?:haem|paed|caes)"), lambda m: m.group(0)[0] + m.group(0)[2:]),
    (re.compile(r"(?<=[a-z])(?:o|oe)ea\b"), "ea"),  # diarrhoea, gonorrhoea
    (re.compile(r"\b(tum|behavi|col)our"), r"\1or"),  # tumour, behaviour, colour
)


def _american_spelling(text: str) -> str:
    lowered = text.lower()
    if not any(mark in lowered for mark in ("oe", "ae", "our")):
        return text
    for pattern, repl in _BRITISH:
        lowered = pattern.sub(repl, lowered)
    return lowered


# History shorthand, written out before synonyms are matched so that phrases such as
# "history of mi" (old myocardial infarction) also read "hx of mi".
_HISTORY = re.compile(r"\b(?:(fhx)|hx|h/o)\b", re.IGNORECASE)


def _history_words(match: re.Match[str]) -> str:
    return (
        "family history" if match.group(1) else "history of" if "/" in match.group(0) else "history"
    )


def normalize_query(text: str) -> str:
    """`text` with "w/o" and "no" written as "without" (the word code titles use), British
    spellings in American ("oedema" -> "edema", "haemorrhage" -> "hemorrhage") and history
    shorthand in words ("hx" -> "history", "h/o" -> "history of", "fhx" -> "family history")."""
    text = _american_spelling(text)
    if "hx" in text.lower() or "h/o" in text.lower():
        text = _HISTORY.sub(_history_words, text)
    return _WITHOUT.sub(" without ", text) if ("/" in text or "no" in text.lower()) else text


CM_BIT = 1 << SYSTEM_INDEX["icd10cm"]
PCS_BIT = 1 << SYSTEM_INDEX["icd10pcs"]
HCPCS_BIT = 1 << SYSTEM_INDEX["hcpcs"]

# Words that name a procedure, as ICD-10-PCS does: root operations and common operative
# abbreviations. ("removal" and "amputation" are left out: "suture removal" is an aftercare
# encounter, "traumatic amputation" an injury.)
_PROCEDURE_WORDS = frozenset(
    {
        "resection", "excision", "replacement", "insertion", "bypass", "dilation", "drainage",
        "transfusion", "reposition", "fusion", "detachment", "extraction", "fragmentation",
        "destruction", "inspection", "supplement", "occlusion", "restriction", "release",
        "division", "transplantation", "reattachment", "alteration", "revision", "orif",
        "crif", "appy", "chole", "tka", "tha", "cabg", "pci", "ptca", "phaco", "lap",
        "laparoscopic", "arthroscopic", "thoracoscopic", "percutaneous", "biopsy",
        "arthroplasty", "debridement", "cath", "catheterization",
    }
)  # fmt: skip
_PROCEDURE_SUFFIX = re.compile(
    r"(?:ectomy|ectomies|otomy|ostomy|plasty|pexy|rrhaphy|tripsy|desis|centesis|scopy)$"
)
# Words that name a drug dose, a supply or a billing modifier: HCPCS Level II.
_HCPCS_WORDS = frozenset(
    {
        "injection", "inj", "mg", "mcg", "ml", "gram", "grams", "gm", "units", "unit", "vial",
        "supply", "supplies", "dme", "kit", "modifier", "ambulance",
    }
)  # fmt: skip
# "Cesarean section" names the operation; "cesarean delivery" alone also appears in the
# pregnancy diagnoses ("Maternal care for scar from previous cesarean delivery").
_PROCEDURE_PHRASES = re.compile(
    r"\b(?:i d|i and d|incision and drainage|t a|c ?section|ca?esarean section"
    r"|open reduction|closed reduction)\b"
)
# "status post", "s/p", "history of", "... status": the patient's status, an ICD-10-CM Z
# code ("left knee replacement status" is Z96.652, not the replacement itself). "Encounter
# for ..." is the reason for a visit, a Z code too ("encounter for iud insertion" is Z30.430,
# not the insertion).
_STATUS = re.compile(r"\b(?:status|s/p|s p|history of|hx of|personal history|encounter for)\b")


def query_intent(text: str) -> int:
    """Bit mask of the one code set the query's words ask for (`1 << SYSTEM_INDEX[...]`),
    0 when they ask for none or for several."""
    folded = " ".join(raw_words(text))
    if _STATUS.search(folded):
        return CM_BIT
    words = folded.split()
    asks = PCS_BIT if _PROCEDURE_PHRASES.search(folded) else 0
    for word in words:
        if word in _PROCEDURE_WORDS or (len(word) > 6 and _PROCEDURE_SUFFIX.search(word)):
            asks |= PCS_BIT
        elif word in _HCPCS_WORDS:
            asks |= HCPCS_BIT
    return asks if asks in (PCS_BIT, HCPCS_BIT) else 0


# Dose units and routes of administration: descriptors bill per unit and name the route only
# when it sets the code apart, so a query's unit or route that a title lacks costs little.
_SOFT_WORDS = frozenset(
    {
        "mg", "mcg", "ml", "gram", "gm", "g", "unit", "cc", "dose", "im", "iv", "sq", "subq",
        "sc", "intramuscular", "intravenous", "subcutaneous", "oral", "vial", "each",
        "intravitreal", "intrathecal", "intradermal", "intravesical", "intranasal", "inhaled",
        "inhalation", "nebulized", "topical", "sublingual", "po", "ivp", "ivpb",
    }
)  # fmt: skip


# "Status post ...", "... status": the framing of a status query, not words its code says
# ("status post appendectomy" is Z90.49 "Acquired absence of other specified parts of
# digestive tract"). With ICD-10-CM intent they cost little when a title lacks them.
FRAMING_WORDS = frozenset({"status", "post"})


def soft_word(token: str) -> bool:
    """A number, dose unit, route or lone letter ("s/p", "i&d" leave "s", "p", "i", "d"):
    a word whose absence from a title costs little."""
    return token[:1].isdigit() or token in _SOFT_WORDS or len(token) == 1


# Groups of mutually exclusive qualifiers (normalised tokens).
OPPOSITES: tuple[frozenset[str], ...] = (
    frozenset({"right", "left", "bilateral"}),
    frozenset({"initial", "subsequent", "sequela"}),
    frozenset({"acute", "chronic"}),
    frozenset({"upper", "lower"}),
    frozenset({"open", "closed"}),
    frozenset({"displaced", "nondisplaced"}),
    frozenset({"male", "female"}),
    frozenset({"intractable"}),  # with "not intractable" (see qualifier_factor)
)
CONFLICT_FACTOR = 0.85  # per group whose words in the title contradict the query's
# "History of" alone is the patient's own history (the ICD-10-CM personal history codes); a
# family history is asked for by name. A "Family history of ..." title answers another
# question unless the query names the family.
_HISTORY_WORDS = frozenset({"history", "hx"})
_FAMILY_WORDS = frozenset({"family", "familial", "fhx", "fh"})
NEGATION_FACTOR = 0.8  # the title negates what the query asks for ("without wheels")


@dataclass(frozen=True)
class Qualifiers:
    """The qualifier words of a query: per group, the words it says; what it wants absent."""

    said: tuple[frozenset[str], ...]
    tokens: frozenset[str]
    without: frozenset[str]  # words the query puts after "without"
    # The groups the query says a word of, with those words (most queries say none or one).
    active: tuple[tuple[frozenset[str], frozenset[str]], ...] = ()
    own_history: bool = False  # "history of" without naming the family

    @classmethod
    def of(cls, tokens: Sequence[str]) -> Qualifiers:
        """Qualifiers of a tokenised query."""
        said = tuple(group & frozenset(tokens) for group in OPPOSITES)
        without = frozenset(
            tokens[i + 1] for i, tok in enumerate(tokens[:-1]) if tok in ("without", "not", "non")
        )
        words = frozenset(tokens)
        active = tuple((group, s) for group, s in zip(OPPOSITES, said, strict=True) if s)
        own_history = bool(words & _HISTORY_WORDS) and not words & _FAMILY_WORDS
        return cls(said, words, without, active, own_history)

    def also_absent(self, words: frozenset[str]) -> Qualifiers:
        """The same qualifiers, with more words the query wants absent (the synonym readings
        of a "without" word: "w/o fb" wants no "foreign body")."""
        return replace(self, without=self.without | words)


# Where a negated phrase ends: another negation, or the code's site and encounter
# ("Trichiasis without entropion right upper eyelid": the eyelid is not negated).
_NEGATION_END = frozenset(
    {"without", "not", "no", "right", "left", "bilateral", "unspecified", "initial",
     "subsequent", "sequela", "encounter"}
)  # fmt: skip
NEGATED_SPAN = 2  # words after "without" that it negates ("without current pathological ...")


NEGATORS = frozenset({"without", "not", "no", "than", "non"})


def has_negation(title: Sequence[str]) -> bool:
    """Does a title (its tokens) negate anything? (Else the query variant's words cannot
    change `qualifier_factor`, and the engine may reuse one factor for every variant.)"""
    return not NEGATORS.isdisjoint(title)


def negated_words(title: Sequence[str]) -> frozenset[str]:
    """Words a title (its tokens) says the code is *not*: up to NEGATED_SPAN words after
    "without", "not", "no" ("Age-related osteoporosis without current pathological
    fracture"), and the word after "other than" ("Crutch, underarm, other than wood")."""
    negated_at: set[int] = set()
    for i, tok in enumerate(title[:-1]):
        if tok in ("without", "not", "no"):
            if title[i + 1] == "mention":
                continue  # "without mention of back pain": not stated, not absent
            for j in range(i + 1, min(i + 1 + NEGATED_SPAN, len(title))):
                if title[j] in _NEGATION_END:
                    break
                negated_at.add(j)
        elif (tok == "than" and i > 0 and title[i - 1] == "other") or tok == "non":
            # "other than wood"; "non-sterile", "non-pressure ulcer", "non-Hodgkin"
            negated_at.add(i + 1)
    if not negated_at:
        return frozenset()
    # A word the title also says outright is not absent: "Hypertensive heart and chronic
    # kidney disease without heart failure" is still about the heart.
    said = {w for j, w in enumerate(title) if j not in negated_at}
    return frozenset(title[j] for j in negated_at) - said


def _mentions(negated: frozenset[str], words: frozenset[str]) -> bool:
    """Does a query word name a negated title word, as itself or a derived form ("wooden"
    for "wood", "wheeled" for "wheel")? Short words must match exactly."""
    if negated & words:
        return True
    return any(
        len(neg) >= 4 and len(word) > len(neg) and word.startswith(neg)
        for neg in negated
        for word in words
    )


def qualifier_factor(
    q: Qualifiers, title: Sequence[str], variant_words: frozenset[str] = frozenset()
) -> float:
    """Demotion of a title (its tokens) whose qualifiers contradict the query's.

    `variant_words` holds the words of the query variant being scored (synonym expansions and
    spelling corrections: "luts" -> lower urinary tract symptoms, "bleeding" -> hemorrhage);
    a title that negates one of them ("without hemorrhage") answers another question.
    """
    factor = 1.0
    negates = not NEGATORS.isdisjoint(title)
    if not (q.active or q.own_history or q.without or negates):
        return factor  # nothing to contradict (most titles of most queries)
    words = frozenset(title)
    for group, said in q.active:
        in_title = group & words
        if in_title and not in_title & said:
            factor *= CONFLICT_FACTOR
    if q.own_history and "family" in words and "history" in words:
        factor *= CONFLICT_FACTOR
    negated = negated_words(title) if negates else frozenset()
    if negated and "non" in q.tokens | variant_words:
        # The query says "non-..." itself ("nstemi" -> non st elevation): a "non-ST" title
        # agrees with it.
        negated -= {title[i + 1] for i, tok in enumerate(title[:-1]) if tok == "non"}
    if negated and _mentions(
        negated, (q.tokens | variant_words) - q.without - {"without", "not", "non"}
    ):
        factor *= NEGATION_FACTOR
    if q.without and q.without & (words - negated):
        factor *= NEGATION_FACTOR
    return factor
