"""Build the word-search index inside the code database.

The builder (`bot.codes.build`) calls `build_search_index(conn, progress)` once the `codes`
table is filled. Everything the query engine (`bot.codes.search`) needs is written into the
same SQLite file, so opening the engine reads a few small blobs and nothing else:

* `search_postings(token, df, title_ids, other_ids, vocab_ids)`: one row per distinct
  normalised token. `title_ids` lists the documents whose title holds the token, `other_ids`
  the documents that have it only in the short title or inclusion terms, `vocab_ids` those
  that have it only through an official index term (`bot.codes.vocabulary`: PCS index, CM
  Table of Drugs, Neoplasm Table, External Cause Index). All are packed `array('I')` bytes of
  *internal* document numbers in ascending order.
* `search_vocab(source, term, system, target)`: the index terms themselves, so `--explain`
  can say which one led to a code; `rewrites` in `search_meta`: the source rewrites (PCS
  body part/device/substance keys, brand -> generic) kept for this code set, one
  "phrase TAB expansion TAB source" line each.
* `search_meta(key, value)`: the document table as packed arrays (`doc_ids`, `doc_tlen`,
  `doc_flags`, `doc_depth`; `doc_ctx`: the qualifying contexts a title adds, as `CTX_*` bits;
  `doc_block`: internal number of the document's ICD-10-CM block, `NO_BLOCK` if none;
  `doc_head`: position in the vocabulary of the title's head word, `NO_HEAD` if none), the
  vocabulary and the synonyms text. A title's length (`doc_tlen`) leaves out default words
  such as "without complications" (see `_DEFAULT_WORDS`).

A title's *head word* says what the code is: the head noun of its first phrase in HCPCS and
ICD-10-CM ("Walker, rigid" -> walker; "Crutch attachment, walker" -> attachment; "External
ambulatory infusion pump, insulin" -> pump), the root operation in ICD-10-PCS ("Replacement of
Right Hip Joint ..." -> replacement). See `head_word`.

Internal document numbers are assigned in order of a static "generality" prior (groups such as
chapters last, terminated codes late, short titles first, billable before headers). A smaller
number is a better document when everything else is equal, so the engine can take the best
candidates of a large posting set with a plain `heapq.nsmallest` in C, without scoring them all
in Python.
"""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path

from bot.codes.sources.icd10pcs_history import UNTITLED
from bot.codes.vocabulary import IndexTerm, Rewrite, Vocabulary, load_vocabulary

INDEX_VERSION = "15"

# Common function words and words that only say "not more specific". They carry no meaning
# for ranking; leaving them out also keeps them from inflating a title's length.
STOPWORDS = frozenset(
    {
        "a", "an", "and", "are", "as", "at", "be", "by", "due", "for", "from", "in", "into",
        "is", "it", "its", "of", "on", "or", "the", "to", "with", "w", "unspecified", "nos",
    }
)  # fmt: skip

SYSTEM_INDEX = {"icd10cm": 0, "icd10pcs": 1, "hcpcs": 2, "cpt": 3}
SYSTEM_NAMES = tuple(SYSTEM_INDEX)

# doc_flags bits (bits 0-1 hold the system index).
FLAG_BILLABLE = 4
FLAG_TERMINATED = 8
FLAG_GROUP = 16  # chapter, block, section, body system: navigation headers, not codes
FLAG_MODIFIER = 32

GROUP_KINDS = frozenset({"chapter", "block", "section", "body_system"})
NO_BLOCK = 0xFFFFFFFF  # doc_block value of a document outside any ICD-10-CM block
NO_HEAD = 0xFFFFFFFF  # doc_head value of a title without a head word

# Words that only say "the default of its category" ("without complications", "not elsewhere
# classified", "initial encounter", "unspecified site"): they do not count towards a title's
# length, so the default child of a category is as general as its parent. ("Other" is not a
# default: "Other hypertension" is a residual category, not the answer to "hypertension".)
_UNSPECIFIED_AXIS = (
    r"(?<=unspecified )(?:site|sites|organism|type|part|laterality|side|trimester|region"
    r"|cause|episode|severity|degree|stage|level|kind|location)|site not specified"
    r"|(?:site|sites|part|parts|organism|type|side|region|level) unspecified"
)
# The same words leave the title's word sequence that the engine checks for the query's words
# in order ("Burn of unspecified degree of right hand, unspecified site, initial encounter"
# reads "burn right hand initial encounter" for "burn of right hand initial").
_UNSPECIFIED_AXIS_WORDS = re.compile(r"\b(?:" + _UNSPECIFIED_AXIS + r")\b")
# Qualifier words the query rules weigh (`bot.codes.query_rules.OPPOSITES`): a
# parenthesised group holding one stays in the word sequence ("with (acute) exacerbation").
SEQUENCE_QUALIFIERS = frozenset(
    {"right", "left", "bilateral", "initial", "subsequent", "sequela", "acute", "chronic",
     "upper", "lower", "open", "closed", "displaced", "nondisplaced", "male", "female",
     "intractable"}
)  # fmt: skip


def _nonessential(match: re.Match[str]) -> str:
    """A parenthesised ICD-10-CM group, left out of the word sequence unless it qualifies."""
    group = match.group(0)
    return group if SEQUENCE_QUALIFIERS & set(raw_words(group)) else " "


def title_sequence(title: str) -> list[str]:
    """The ICD-10-CM title's words in order as the engine checks them for adjacency and
    qualifiers: without unspecified axes ("unspecified site") and nonessential parenthesised
    words ("Fatty (change of) liver" reads "fatty liver")."""
    text = _UNSPECIFIED_AXIS_WORDS.sub(" ", fold(title))
    if "(" in text:
        text = _PARENS.sub(_nonessential, text)
    return tokenize(title_words(text))


_DEFAULT_WORDS = re.compile(
    r"\b(?:without (?:mention of )?complications?|uncomplicated|not elsewhere classified"
    r"|nec|initial encounter(?: for closed fracture)?"
    # a later visit for a fracture heals routinely unless a note says otherwise (the "D"
    # 7th character), and a fracture not called open is closed
    r"|(?<=subsequent encounter )for (?:closed )?fracture with routine healing"
    # diabetes of no documented type is type 2 (ICD-10-CM guideline I.C.4.a.2)
    r"|^type 2(?= diabetes mellitus)"
    # Z codes frame a visit as "Encounter for ...": the framing asks nothing of the query
    r"|^encounter for"
    # open wounds: ICD-10-CM's index defaults a laceration or puncture to these
    r"|without foreign body|without damage to nail"
    r"|" + _UNSPECIFIED_AXIS +
    # the index's defaults when a note says nothing more: "Migraine ... not intractable",
    # "Peptic ulcer ... unspecified as acute or chronic", "leukemia ... not having achieved
    # remission", "Unilateral inguinal hernia ... not specified as recurrent", "Influenza due
    # to unidentified influenza virus"
    r"|not intractable|not having achieved remission|due to unidentified \w+ virus"
    r"|(?:not specified|unspecified) as [^,;:()\[\]]*)\b"
)

# ICD-10-CM names the default of a category by what it lacks: "Calculus of gallbladder with
# acute cholecystitis without obstruction", "Benign prostatic hyperplasia without lower urinary
# tract symptoms", "Diverticulitis ... without perforation or abscess without bleeding". The
# "without" clause (up to the next phrase or preposition) asks nothing of a query that does not
# mention it; a query that does ("... with obstruction") still finds the "with" code, which
# holds the word, and `query_rules.qualifier_factor` demotes the title that negates it.
# HCPCS "without" clauses are not defaults ("Walker, heavy duty, without wheels").
# An ICD-10-PCS approach is one value of one axis, however many words name it: "Via Natural or
# Artificial Opening Endoscopic" must not make a title five words longer than "Percutaneous
# Approach" (or "intubation" finds the percutaneous code first).
_PCS_APPROACH = re.compile(
    r"\b(?:(?:open|percutaneous(?: endoscopic)?|external) approach"
    r"|via natural or artificial opening(?: with percutaneous endoscopic assistance"
    r"| endoscopic)?(?: approach)?)\b"
)
# A drug descriptor: it names a dose ("Insulin (fiasp), per 5 units"; "..., 1 mg").
_DRUG_DOSE = re.compile(r"\b(?:mg|mcg|units?|ml|grams?|gm)\b|^injection", re.IGNORECASE)


def _product_name_only(match: re.Match[str]) -> str:
    """A parenthesised group of a HCPCS drug descriptor, kept when it is one plain word."""
    inner = match.group(0)[1:-1].strip()
    return f" {inner} " if inner.isalpha() else " "


_EXCLUDES_BIOSIMILAR = re.compile(r"\bexcludes? biosimilars?\b")
_NOS = re.compile(r"\bnot otherwise specified\b")
# The clause ends at a preposition or at a laterality ("Trichiasis without entropion right
# upper eyelid": the eyelid is the code's site, not part of what is absent).
_WITHOUT_CLAUSE = re.compile(
    r"\bwithout(?: (?!(?:with|of|in|due|for|at|on|to|and|as|right|left|bilateral"
    r"|unspecified)\b)[a-z0-9-]+)+"
)
# A "without" clause may list what is absent, ending ", and ...": "Unspecified dementia,
# unspecified severity, without behavioral disturbance, psychotic disturbance, mood
# disturbance, and anxiety" (F03.90) is the default of "dementia" as much as the shorter
# "without" titles are. (One comma is a site: "without rheumatoid factor, ankle and foot".)
_WORD_IN_CLAUSE = (
    r"(?!(?:with|of|in|due|for|at|on|to|as|right|left|bilateral|unspecified)\b)[a-z0-9-]+"
)
_WITHOUT_LIST = re.compile(
    rf"\bwithout(?: {_WORD_IN_CLAUSE})+(?:, {_WORD_IN_CLAUSE}(?: {_WORD_IN_CLAUSE})*)+"
    rf", and {_WORD_IN_CLAUSE}(?: {_WORD_IN_CLAUSE})*"
)

# doc_ctx bits: a *qualifying context* the title adds ("in pregnancy", "due to underlying
# condition", "personal history of"). The engine demotes a code for each context the query
# does not mention; the trigger words below are what counts as mentioning it.
CTX_PREGNANCY = 1
CTX_PERINATAL = 2
CTX_EXTERNAL = 4  # ICD-10-CM V00-Y99: external causes, secondary codes
CTX_SECONDARY = 8  # due to underlying condition, in diseases classified elsewhere
CTX_INDUCED = 16  # drug or chemical induced
CTX_HISTORY = 32  # personal / family history of
CTX_SCREENING = 64
CTX_POISONING = 128  # poisoning by, adverse effect of, underdosing of, toxic effect of
CTX_SEQUELA = 256  # sequela, subsequent encounter
CTX_PRESENCE = 512  # presence of, ... status
CTX_COMPLICATION = 1024  # postprocedural, following surgery, breakdown of a device
CTX_CONGENITAL = 2048
CTX_QUALITY = 4096  # HCPCS quality-reporting codes (G8xxx, G9xxx, M1xxx)
CTX_COMMERCIAL = 8192  # HCPCS S codes: used by commercial payers only, not by Medicare
CTX_NONCOVERED = 16384  # HCPCS "Noncovered ..." items: billed only to say Medicare won't pay
CTX_METASTATIC = 32768  # secondary (metastatic) malignant neoplasms: "breast cancer" is primary
CTX_IN_SITU = 65536  # carcinoma / melanoma in situ: "melanoma" alone is the malignant one

_CTX_PATTERNS: tuple[tuple[int, re.Pattern[str]], ...] = tuple(
    (bit, re.compile(pattern))
    for bit, pattern in (
        (
            CTX_PREGNANCY,
            r"\b(?:pregnan\w*|childbirth|puerper\w*|trimester|antepartum|postpartum"
            r"|intrapartum|obstetric\w*|gestational|maternal)\b",
        ),
        (CTX_PERINATAL, r"\b(?:newborn|neonatal|perinatal|neonate|prematurity)\b"),
        (
            CTX_SECONDARY,
            r"\b(?:underlying condition|classified elsewhere|in (?:other )?diseases)\b",
        ),
        (CTX_INDUCED, r"\b(?:drug or chemical induced|induced)\b"),
        (CTX_HISTORY, r"\bhistory of\b"),
        (CTX_SCREENING, r"\bscreening\b"),
        (
            CTX_POISONING,
            r"\b(?:poisoning by|adverse effect|underdosing|toxic effect)\b",
        ),
        (CTX_SEQUELA, r"\b(?:sequela|subsequent encounter)\b"),
        (CTX_PRESENCE, r"(?:^presence of\b|\bstatus$|\bfitting and adjustment\b)"),
        (
            CTX_COMPLICATION,
            r"\b(?:postprocedural|postoperative|following (?:\w+ )?(?:surgery|procedure)"
            r"|complication of|breakdown|displacement of|leakage of|malfunction)\b",
        ),
        (CTX_CONGENITAL, r"\bcongenital\b"),
        (CTX_METASTATIC, r"\bsecondary (?:malignant|carcinoid|neuroendocrine)\b"),
        (CTX_IN_SITU, r"\bin situ\b"),
    )
)


# An exclusion inside a title ("Fracture of foot and toe, except ankle"; "[any part, except
# face]") names what the code is NOT: its words are not indexed as the title's, or "ankle
# fracture" would find the one fracture code that excludes the ankle. Runs to the phrase's end.
_EXCLUSION = re.compile(r"\b(?:except|excluding)\b[^,;:()\[\]]*", re.IGNORECASE)


def title_words(title: str) -> str:
    """`title` without its exclusion phrases (see `_EXCLUSION`): the text to index."""
    return _EXCLUSION.sub(" ", title) if "xc" in title.lower() else title


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Query words that mention a context (folded and stemmed like every token).
CTX_TRIGGERS: dict[int, frozenset[str]] = {
    CTX_PREGNANCY: _words(
        "pregnancy pregnant prenatal antenatal obstetric obstetrical ob labor labour delivery"
        " childbirth miscarriage abortion ectopic eclampsia preeclampsia gestational gestation"
        " trimester postpartum puerperium puerperal maternal fetal fetus cesarean caesarean"
        " placenta placental antepartum intrapartum lactation breastfeeding"
    ),
    CTX_PERINATAL: _words(
        "newborn neonatal neonate perinatal baby infant birth fetal fetus premature"
        " prematurity preterm nicu"
    ),
    CTX_EXTERNAL: _words(
        "accident fall fell fallen struck bitten bite collision crash assault drowning"
        " cause external activity place occupant pedestrian"
    ),
    CTX_SECONDARY: _words("underlying elsewhere secondary"),
    CTX_INDUCED: _words("induced drug chemical medication medicine iatrogenic"),
    CTX_HISTORY: _words("history hx family previous past prior"),
    CTX_SCREENING: _words("screening screen"),
    CTX_POISONING: _words(
        "poisoning poison overdose adverse reaction underdosing underdose toxic toxicity"
        " effect side"
    ),
    CTX_SEQUELA: _words("sequela late subsequent followup aftercare"),
    CTX_PRESENCE: _words("presence status fitting adjustment"),
    CTX_COMPLICATION: _words(
        "complication postprocedural postoperative postop post following after breakdown"
        " displacement leakage malfunction"
    ),
    CTX_CONGENITAL: _words("congenital birth defect inborn hereditary malformation"),
    CTX_QUALITY: _words("documentation documented measure quality mips reason reporting"),
    CTX_COMMERCIAL: _words("commercial private payer insurer nonmedicare"),
    CTX_NONCOVERED: _words("noncovered uncovered covered coverage"),
    CTX_METASTATIC: _words("secondary metastatic metastasis metastases mets spread"),
    CTX_IN_SITU: _words("situ insitu cis dcis lcis noninvasive"),
}

SYNONYMS_PATH = Path(__file__).resolve().parents[2] / "data" / "synonyms.tsv"

_SPLIT = re.compile(r"[^0-9a-z]+")
_FOR_NOTE = re.compile(r"\(for [^()]*\)", re.IGNORECASE)  # HCPCS "(for esrd on dialysis)"
# ICD-10-CM puts nonessential modifiers in parentheses: "Essential (primary) hypertension".
_PARENS = re.compile(r"\([^()]*\)")
_POSSESSIVE = re.compile(r"['’]s\b")
_APOSTROPHE = re.compile(r"['’]")


def fold(text: str) -> str:
    """Lower-case `text` and strip accents (Ménière -> meniere) so typing is forgiving."""
    text = text.lower()
    if not text.isascii():
        text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return text


@lru_cache(maxsize=1 << 16)  # a few tens of thousands of distinct words; called millions of times
def stem(word: str) -> str:
    """A deliberately light stemmer: plurals only.

    Anything stronger (dropping -itis, -ic, -al) merges words coders keep apart, e.g.
    "arthritis" / "arthritic" or "renal" / "ren". The same function runs on the index and the
    query, so odd stems such as "diabete" are harmless.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ally") and len(word) > 6:
        # adverbs of adjectives: the PCS index's "Delivery, Manually assisted" is what a coder
        # types as "manual assisted delivery" ("surgically", "medically" alike)
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is", "ys", "as", "os")):
        return word[:-1]
    return word


def raw_words(text: str) -> list[str]:
    """Split `text` into folded words (no stemming, stopwords kept)."""
    text = _APOSTROPHE.sub("", _POSSESSIVE.sub("", fold(text)))
    return [w for w in _SPLIT.split(text) if w]


def tokenize(text: str) -> list[str]:
    """Normalised search tokens of `text`, in order: folded, stemmed, stopwords removed."""
    stop = STOPWORDS
    return [stem(w) for w in raw_words(text) if w not in stop]


# The dose part of an HCPCS drug descriptor ("Injection, naloxone hydrochloride, per 1 mg"):
# it says how the drug is billed, not what it is, so it does not make a title longer.
DOSE_WORDS = frozenset({"per", "up", "mg", "mcg", "ml", "gram", "gm", "unit", "cc", "dose"})


def title_length(title: str, short_title: str, kind: str, system: str = "") -> int:
    """How many distinct words a title adds beyond what a query may ask for.

    Parenthesised nonessential words do not count, nor the dose part of HCPCS descriptors
    (`DOSE_WORDS`, numbers). A modifier's long title is a definition with instructions
    ("Technical component; under certain circumstances ..."), so its short title measures it
    better. (Other short titles are abbreviations: not comparable.)
    """
    title = title_words(title)
    if system == "hcpcs":
        # HCPCS parentheses name one product ("Injection, triamcinolone acetonide (xipere),
        # 1 mg"; "Insulin (fiasp), per 5 units"): words the generic code does not have. The
        # "(for esrd on dialysis)" note says who may bill, not what the item is.
        if "(" in title:
            if _DRUG_DOSE.search(title):
                # a product is one plain word; "(g-csf)", "(for depot suspension)" explain
                title = _PARENS.sub(_product_name_only, title)
            else:
                # elsewhere parentheses explain ("fitting (including follow-up)", "insert(s)")
                title = _PARENS.sub(" ", title)
        free = default_free(_FOR_NOTE.sub(" ", title) if "(for " in title else title)
        if free.startswith("injection"):
            # a drug's "not otherwise specified" code is the drug itself, in any form not
            # listed; elsewhere (DME, supplies) it is a catch-all, not the default. And the
            # code that "excludes biosimilar" is the reference product itself, the one its
            # brand name ("Neupogen", "Remicade") names.
            free = _NOS.sub(" ", _EXCLUDES_BIOSIMILAR.sub(" ", free))
    elif system == "icd10pcs":
        free = _PCS_APPROACH.sub(
            " approach ", default_free(_PARENS.sub(" ", title) if "(" in title else title)
        )
    else:
        free = default_free(_PARENS.sub(" ", title) if "(" in title else title)
        free = _NOS.sub(" ", free)
        if "without" in free:
            free = _WITHOUT_CLAUSE.sub(" ", _WITHOUT_LIST.sub(" ", free))
    words = set(tokenize(free))
    if system == "hcpcs":
        # "Injection, ..." opens most drug descriptors: the form it is billed in, like the
        # dose ("insulin 5 units" is "Injection, insulin, per 5 units" before the branded
        # "Insulin (fiasp), per 5 units")
        words = {
            w for w in words if w not in DOSE_WORDS and w != "injection" and not w[:1].isdigit()
        }
    n = len(words)
    if short_title and kind == "modifier":
        n = min(n, len(set(tokenize(short_title))))
    return max(n, 1)


def context_mask(tokens: Iterable[str]) -> int:
    """The contexts a query mentions, from its (normalised) tokens."""
    mask = 0
    for tok in tokens:
        mask |= _TRIGGER_BITS.get(tok, 0)
    return mask


def default_free(title: str) -> str:
    """`title` without its "default" words (see `_DEFAULT_WORDS`), lower-cased."""
    return _DEFAULT_WORDS.sub(" ", fold(title))


def context_bits(system: str, kind: str, key: str, title: str) -> int:
    """The qualifying contexts a code's title (or its place in the code set) adds."""
    bits = 0
    if system == "icd10cm":
        if kind in GROUP_KINDS:
            return 0  # headers name the context of a whole range: they are its home
        first = key[:1]
        if first == "O":
            bits |= CTX_PREGNANCY
        elif first == "P":
            bits |= CTX_PERINATAL
        elif first in "VWXY":
            bits |= CTX_EXTERNAL
        elif first == "Q":
            bits |= CTX_CONGENITAL
        elif "T80" <= key[:3] <= "T88":
            bits |= CTX_COMPLICATION  # complications of surgical and medical care
        text = fold(_PARENS.sub(" ", title))
        for bit, pattern in _CTX_PATTERNS:
            if pattern.search(text):
                bits |= bit
    elif system == "hcpcs" and kind == "code" and len(key) == 5:
        if key[:2] in ("G8", "G9", "M1"):
            bits |= CTX_QUALITY
        elif key[0] == "S":
            bits |= CTX_COMMERCIAL
        if fold(title).startswith(("noncovered", "non-covered")):
            bits |= CTX_NONCOVERED
    return bits


# Where a title's first phrase ends ("Walker, rigid"; "Ostomy pouch, closed; ..."), and the
# words that end its head noun phrase ("Infusion set for external insulin pump" -> set).
_PHRASE_END = re.compile(r"[,;:(\[]| - ")
_HEAD_STOP = frozenset(
    {
        "for", "with", "without", "of", "used", "use", "in", "on", "to", "per", "via", "into",
        "including", "includes", "include", "by", "from", "at", "when", "that", "which", "as",
        "other", "than", "not", "each",
    }
)  # fmt: skip


# ICD-10-PCS sections whose titles start with the root operation: Medical and Surgical (0),
# Obstetrics (1), Placement (2), Administration (3), Measurement and Monitoring (4),
# Extracorporeal Assistance (5) and New Technology (X). The other sections name the root type
# at the end of a noun phrase: "Tinnitus Masker Assessment", "Osteopathic Treatment of Head".
_PCS_OPERATION_FIRST = frozenset("012345X")


def head_word(system: str, kind: str, title: str, key: str = "") -> str:
    """The normalised word that says what a code *is* (empty for headers and modifiers).

    ICD-10-PCS titles of the surgical-style sections start with their root operation
    ("Resection of Gallbladder", "Bypass Coronary Artery ..."), so that is the head; in the
    other sections (`key` tells which) the root type ends the first noun phrase like any
    noun head ("Tinnitus Masker Assessment" -> assessment). Other titles are noun phrases
    whose head noun ends the first phrase, before any preposition: "Walker, rigid (pickup)"
    -> walker; "Brake attachment for wheeled walker" -> attachment; "Presence of artificial
    hip joint" -> presence.
    """
    if kind in GROUP_KINDS or kind == "modifier":
        return ""
    words = raw_words(_PHRASE_END.split(fold(_PARENS.sub(" ", title)), 1)[0])
    if system == "icd10pcs" and (not key or key[:1].upper() in _PCS_OPERATION_FIRST):
        return stem(words[0]) if words else ""
    head = ""
    for word in words:
        if word in _HEAD_STOP:
            break
        if word not in STOPWORDS:
            head = word
    return stem(head) if head.isalpha() else ""


_TRIGGER_BITS: dict[str, int] = {}
for _bit, _trigger_words in CTX_TRIGGERS.items():
    for _word in _trigger_words:
        _TRIGGER_BITS[stem(_word)] = _TRIGGER_BITS.get(stem(_word), 0) | _bit


def depth_of(system: str, kind: str, key: str) -> int:
    """Levels below the 3-character category (ICD-10-CM only; other sets are flat)."""
    if system == "icd10cm" and kind in ("category", "subcategory", "code"):
        return max(0, len(key) - 3)
    return 0


# A title that says it is the unspecified member of its category ("Migraine, unspecified, not
# intractable ..." beside "Migraine without aura, not intractable ..."; "Acute pharyngitis,
# unspecified" beside "Streptococcal pharyngitis") is the answer to a query that names no
# subtype: among otherwise equal documents it sorts first.
_SAYS_UNSPECIFIED = re.compile(r"\b(?:unspecified|not otherwise specified|nos)\b")


def says_unspecified(title: str) -> bool:
    """Does `title` call itself the unspecified (default) member of its category?"""
    return _SAYS_UNSPECIFIED.search(fold(title)) is not None


def _unspecified_default(system: str, title: str) -> bool:
    # HCPCS "not otherwise specified" items are catch-alls billed when no code fits, never
    # the default answer ("Power wheelchair accessory, not otherwise specified").
    return system == "icd10cm" and says_unspecified(title)


def _prior_key(
    kind: str,
    billable: bool,
    status: str,
    tlen: int,
    system: str,
    order: int,
    unspecified: bool = False,
) -> tuple[int, int, int, int, int, int, int]:
    """Static rank of a document: smaller sorts first when query relevance ties."""
    return (
        1 if kind in GROUP_KINDS else 0,
        1 if status == "terminated" else 0,
        min(tlen, 60),
        0 if billable else 1,
        SYSTEM_INDEX.get(system, 3),
        0 if unspecified else 1,
        order,
    )


def load_synonyms_text(path: Path | None = None) -> str:
    """Text of the synonyms file (empty when it is missing, so a build never fails on it)."""
    path = path or SYNONYMS_PATH
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


def build_search_index(
    conn: sqlite3.Connection,
    progress: Callable[[str], None] = print,
    synonyms_path: Path | None = None,
    vocabulary: Vocabulary | None = None,
) -> None:
    """Write the search tables for the filled `codes` table into the same database.

    `vocabulary` defaults to every official source (`bot.codes.vocabulary.load_vocabulary`).
    Runs inside the caller's connection; the caller commits. Rebuilding drops the old tables.
    """
    started = time.perf_counter()
    if vocabulary is None:
        vocabulary = load_vocabulary(progress=progress)
    conn.execute("DROP TABLE IF EXISTS search_postings")
    conn.execute("DROP TABLE IF EXISTS search_meta")
    conn.execute("DROP TABLE IF EXISTS search_vocab")
    conn.execute(
        "CREATE TABLE search_postings (token TEXT PRIMARY KEY, df INTEGER NOT NULL,"
        " title_ids BLOB NOT NULL, other_ids BLOB NOT NULL, vocab_ids BLOB NOT NULL)"
        " WITHOUT ROWID"
    )
    conn.execute("CREATE TABLE search_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.execute(
        "CREATE TABLE search_vocab (source TEXT NOT NULL, term TEXT NOT NULL,"
        " system TEXT NOT NULL, target TEXT NOT NULL)"
    )

    rows = conn.execute(
        "SELECT id, system, kind, key, title, short_title, billable, status, sort_order,"
        " search_terms, parent_id FROM codes"
    ).fetchall()
    # ICD-10-CM block of every code (the "home" range of a concept: E08-E13 Diabetes mellitus).
    parent_of = {r[0]: r[10] for r in rows}
    block_rows = {r[0] for r in rows if r[1] == "icd10cm" and r[2] == "block"}

    title_of = {r[0]: r[4] for r in rows}
    kind_of = {r[0]: r[2] for r in rows}
    ancestor_cache: dict[int, frozenset[str]] = {}

    def ancestor_words(cid: int) -> frozenset[str]:
        """Title words of a code's ICD-10-CM parents up to its category (not blocks)."""
        parent = parent_of.get(cid)
        if parent is None or kind_of.get(parent) in GROUP_KINDS:
            return frozenset()
        found = ancestor_cache.get(parent)
        if found is None:
            found = frozenset(tokenize(title_words(title_of[parent]))) | ancestor_words(parent)
            ancestor_cache[parent] = found
        return found

    terms_of = {r[0]: r[9] for r in rows}
    inherited_cache: dict[int, str] = {}

    def inherited_terms(cid: int) -> str:
        """Inclusion terms of the ICD-10-CM parents that `cid` only refines by an axis: its
        title is the parent's plus a side, site or encounter ("Juvenile osteochondrosis of
        tibia tubercle, left leg" under M92.52, whose inclusion term is "Osgood-Schlatter
        disease"). A child with a title of its own ("Collagenous colitis" under "Other
        specified noninfective gastroenteritis and colitis") is one item of such a list, not
        all of it, so it inherits nothing."""
        parent = parent_of.get(cid)
        if parent is None or kind_of.get(parent) in GROUP_KINDS:
            return ""
        found = inherited_cache.get(cid)
        if found is None:
            found = ""
            if title_of[cid].lower().startswith(title_of[parent].lower()):
                found = " ".join(t for t in (terms_of[parent], inherited_terms(parent)) if t)
            inherited_cache[cid] = found
        return found

    def block_of(cid: int) -> int | None:
        seen = 0
        node = parent_of.get(cid)
        while node is not None and seen < 12:
            if node in block_rows:
                return node
            node = parent_of.get(node)
            seen += 1
        return None

    # Tokenise once; remember each document's prior so internal numbers follow it.
    docs: list[tuple[tuple[int, ...], int, int, int, int, list[str], set[str], int, str]] = []
    sequence_of: dict[int, list[str]] = {}  # title word sequences without unspecified axes
    nos_words: dict[int, set[str]] = {}  # words of "... NOS" inclusion terms (see _nos_words)
    for cid, system, kind, key, title, short, billable, status, order, terms, _p in rows:
        if title.endswith(UNTITLED):
            title = title[: -len(UNTITLED)]  # a stand-in, not words of the code
        other: set[str] = set(tokenize(short)) if short else set()
        if system == "hcpcs" and "(for " in title:
            # "Cinacalcet, oral, 1 mg, (for esrd on dialysis)": the note says who may bill
            # it, not what it is; its words are the code's, but not its title's.
            other.update(tokenize(" ".join(_FOR_NOTE.findall(title))))
            title_tokens = tokenize(title_words(_FOR_NOTE.sub(" ", title)))
        else:
            title_tokens = tokenize(title_words(title))
        if system == "icd10cm" and ("unspecified" in title.lower() or "(" in title):
            sequence = title_sequence(title)
            if sequence != title_tokens:
                sequence_of[cid] = sequence
        tlen = title_length(title, short, kind, system)
        ctx = context_bits(system, kind, key, title)
        if system == "icd10cm" and kind not in GROUP_KINDS:
            # The category's words name the concept its codes refine ("Cholelithiasis" over
            # "Calculus of gallbladder without cholecystitis"; "Complications of internal
            # orthopedic prosthetic devices" over "Infection ... due to internal right knee
            # prosthesis"): index-style queries use them, so they count as other words.
            other.update(ancestor_words(cid))
            other.update(tokenize(inherited_terms(cid)))
        if terms:
            other.update(tokenize(terms))
            if system == "icd10cm" and "NOS" in terms:
                nos_words[cid] = _nos_words(terms)
        if kind == "modifier":
            # Users say "right side modifier"; the titles never contain the word.
            other.add("modifier")
        flags = SYSTEM_INDEX.get(system, 3)
        if billable:
            flags |= FLAG_BILLABLE
        if status == "terminated":
            flags |= FLAG_TERMINATED
        if kind in GROUP_KINDS:
            flags |= FLAG_GROUP
        if kind == "modifier":
            flags |= FLAG_MODIFIER
        depth = depth_of(system, kind, key)
        prior = _prior_key(
            kind,
            bool(billable),
            status,
            tlen + depth,
            system,
            order,
            _unspecified_default(system, title),
        )
        head = head_word(system, kind, title, key)
        docs.append((prior, cid, min(tlen, 255), depth, flags, title_tokens, other, ctx, head))
    docs.sort(key=lambda d: d[0])
    number_of = {d[1]: n for n, d in enumerate(docs)}
    progress(f"  search index: tokenised {len(docs):,} documents")
    step = time.perf_counter()
    keys = [(r[1], r[3], number_of[r[0]], r[2]) for r in rows]
    vocab_words, kept_terms = _attach_index_terms(vocabulary.terms, keys, progress)
    progress(f"  search index: index terms attached in {time.perf_counter() - step:.1f}s")

    title_post: dict[str, array[int]] = {}
    other_post: dict[str, array[int]] = {}
    index_post: dict[str, array[int]] = {}
    doc_ids = array("I")
    doc_tlen = array("B")
    doc_flags = array("B")
    doc_depth = array("B")
    doc_ctx = array("I")
    doc_block = array("I")
    heads: list[str] = []
    titles: list[list[str]] = []
    for n, (_key, cid, tlen, depth, flags, title_tokens, other, ctx, head) in enumerate(docs):
        heads.append(head if head in title_tokens else "")
        titles.append(sequence_of.get(cid, title_tokens))
        doc_ids.append(cid)
        doc_ctx.append(ctx)
        block = block_of(cid)
        doc_block.append(number_of[block] if block is not None else NO_BLOCK)
        doc_tlen.append(tlen)
        doc_depth.append(min(depth, 255))
        doc_flags.append(flags)
        tset = set(title_tokens) | nos_words.get(cid, set())
        for tok in tset:
            title_post.setdefault(tok, array("I")).append(n)
        for tok in other - tset:
            other_post.setdefault(tok, array("I")).append(n)
        for tok in vocab_words.get(n, ()):
            if tok not in tset and tok not in other:
                index_post.setdefault(tok, array("I")).append(n)

    vocab = sorted(set(title_post) | set(other_post) | set(index_post))
    position = {tok: i for i, tok in enumerate(vocab)}
    doc_head = array("I", (position.get(h, NO_HEAD) if h else NO_HEAD for h in heads))
    # Each title's tokens in order, as vocabulary positions (the engine's adjacency check
    # reads them instead of re-tokenising titles): one array, with each document's start.
    doc_words = array("I")
    doc_word_start = array("I")
    for title_tokens in titles:
        doc_word_start.append(len(doc_words))
        doc_words.extend(position[tok] for tok in title_tokens)
    doc_word_start.append(len(doc_words))
    # What a hit shows (code, title, kind, status), one line per document in internal order:
    # the engine answers without reading the codes table (system and billable are flags).
    shown = {
        r[0]: f"{r[1]}\t{_one_line(r[2])}\t{r[3]}\t{r[4]}"
        for r in conn.execute("SELECT id, code, title, kind, status FROM codes")
    }
    doc_shown = "\n".join(shown[cid] for cid in doc_ids)
    empty = b""
    conn.executemany(
        "INSERT INTO search_postings (token, df, title_ids, other_ids, vocab_ids)"
        " VALUES (?, ?, ?, ?, ?)",
        _posting_rows(vocab, title_post, other_post, index_post, empty),
    )
    conn.executemany(
        "INSERT INTO search_vocab (source, term, system, target) VALUES (?, ?, ?, ?)",
        ((t.source, t.term, t.system, t.target) for t in kept_terms),
    )
    conn.execute("CREATE INDEX search_vocab_target ON search_vocab(system, target)")
    code_words = frozenset(title_post) | frozenset(other_post)

    @lru_cache(maxsize=4096)
    def docs_of(tok: str) -> frozenset[int]:
        return frozenset(title_post.get(tok, ())) | frozenset(other_post.get(tok, ()))

    rewrites = _kept_rewrites(vocabulary.rewrites, frozenset(vocab), code_words, docs_of)
    progress(
        f"  search index: {len(rewrites):,} of {len(vocabulary.rewrites):,} source rewrites"
        " kept (their words occur in code titles)"
    )
    synonyms = load_synonyms_text(synonyms_path)
    meta: list[tuple[str, bytes | str]] = [
        ("version", INDEX_VERSION),
        ("doc_count", str(len(docs))),
        ("doc_ids", doc_ids.tobytes()),
        ("doc_tlen", doc_tlen.tobytes()),
        ("doc_flags", doc_flags.tobytes()),
        ("doc_depth", doc_depth.tobytes()),
        ("doc_ctx", doc_ctx.tobytes()),
        ("doc_block", doc_block.tobytes()),
        ("doc_head", doc_head.tobytes()),
        ("doc_words", doc_words.tobytes()),
        ("doc_word_start", doc_word_start.tobytes()),
        ("doc_shown", doc_shown.encode("utf-8")),
        ("vocab", "\n".join(vocab)),
        ("synonyms", synonyms),
        # Tokenised here, so that the engine's first query need not tokenise 19,000 lines.
        ("rewrites", "\n".join(_rewrite_lines(rewrites))),
    ]
    conn.executemany("INSERT INTO search_meta (key, value) VALUES (?, ?)", meta)
    progress(
        f"  search index: {len(vocab):,} tokens, {len(docs):,} documents"
        f" in {time.perf_counter() - started:.1f}s"
    )


def _one_line(text: str) -> str:
    """`text` without tabs or line breaks (the separators of the stored hit lines)."""
    return " ".join(text.split()) if ("\t" in text or "\n" in text or "\r" in text) else text


def _rewrite_lines(rewrites: Iterable[Rewrite]) -> Iterable[str]:
    """Stored rewrites: phrase tokens TAB expansion tokens TAB source TAB expansion text."""
    for r in rewrites:
        key = " ".join(tokenize(r.phrase))
        tokens = " ".join(tokenize(r.expansion))
        if key and tokens and tokens != key:
            yield f"{key}\t{tokens}\t{r.source}\t{r.expansion}"


_NOS_TERM = re.compile(r"\bNOS\b")


def _nos_words(terms: str) -> set[str]:
    """Words of the inclusion terms that end in "NOS" ("Vertigo NOS" under R42 "Dizziness and
    giddiness", "Pyelonephritis NOS" under N12): the index's statement that this code is the
    default for that term, so they match as title words (they do not lengthen the title)."""
    words: set[str] = set()
    for line in terms.splitlines():
        if _NOS_TERM.search(line):
            words.update(tokenize(_PARENS.sub(" ", line)))
    return words


def _posting_rows(
    vocab: Iterable[str],
    title_post: dict[str, array[int]],
    other_post: dict[str, array[int]],
    index_post: dict[str, array[int]],
    empty: bytes,
) -> Iterable[tuple[str, int, bytes, bytes, bytes]]:
    """Rows for `search_postings`, one per token."""
    for tok in vocab:
        t = title_post.get(tok)
        o = other_post.get(tok)
        v = index_post.get(tok)
        df = sum(len(p) for p in (t, o, v) if p is not None)
        yield (
            tok,
            df,
            t.tobytes() if t is not None else empty,
            o.tobytes() if o is not None else empty,
            v.tobytes() if v is not None else empty,
        )


def _attach_index_terms(
    terms: Sequence[IndexTerm],
    keys: Sequence[tuple[str, str, int, str]],
    progress: Callable[[str], None],
) -> tuple[dict[int, set[str]], list[IndexTerm]]:
    """Index words per internal document number, from the index terms whose target prefixes
    the document's key; and the terms that reached at least one code.

    `keys` holds (system, key, internal number, kind) of every code row. A target equal to a
    code that now has children (a FY2025 table pointing to a code split in FY2026) reaches
    those children: the build report counts them as "followed"; targets that match no
    FY2026 code are dropped and counted.
    """
    by_system: dict[str, tuple[list[str], list[int], set[str]]] = {}
    for system, key, number, kind in sorted(keys):
        if kind in GROUP_KINDS:
            continue
        entry = by_system.setdefault(system, ([], [], set()))
        entry[0].append(key)
        entry[1].append(number)
    leaves: dict[str, set[str]] = {s: set() for s in by_system}
    for system, key, _number, kind in keys:
        if kind == "code" and system in leaves:
            leaves[system].add(key)
    words: dict[int, set[str]] = {}
    kept: list[IndexTerm] = []
    counts: dict[str, list[int]] = {}  # source -> [as written, followed, -, dropped]
    reach: dict[tuple[str, str], list[int]] = {}
    for term in terms:
        count = counts.setdefault(term.source, [0, 0, 0, 0])
        found = by_system.get(term.system)
        if found is None:
            count[3] += 1
            continue
        sorted_keys, numbers, _ = found
        span = reach.get((term.system, term.target))
        if span is None:
            lo = bisect_left(sorted_keys, term.target)
            hi = bisect_left(sorted_keys, term.target + "\uffff", lo)
            span = numbers[lo:hi]
            reach[(term.system, term.target)] = span
        if not span:
            count[3] += 1
            continue
        lo = bisect_left(sorted_keys, term.target)
        if term.children or term.target in leaves[term.system]:
            count[0] += 1
        elif sorted_keys[lo] == term.target and all(
            len(sorted_keys[j]) == 7 for j in range(lo + 1, lo + len(span))
        ):
            count[0] += 1  # a 6-character code the tables list without its 7th character
        else:
            count[1] += 1
        kept.append(term)
        tokens = set(tokenize(term.term))
        for number in span:
            words.setdefault(number, set()).update(tokens)
    for source, (exact, followed, _unused, dropped) in counts.items():
        progress(
            f"  vocabulary {source}: {exact:,} terms reach their FY2026 codes as written,"
            f" {followed:,} point to a code that has FY2026 children (followed to them),"
            f" {dropped:,} point to no FY2026 code (dropped)"
        )
    return words, kept


def _kept_rewrites(
    rewrites: Sequence[Rewrite],
    vocab: frozenset[str],
    code_words: frozenset[str],
    docs_of: Callable[[str], frozenset[int]] | None = None,
) -> list[Rewrite]:
    """The rewrites whose expansion words all occur in the index (else they find nothing);
    a brand name whose words are all title words already is dropped (see `Rewrite.name`;
    a brand that only an index term such as the Table of Drugs names is kept), unless a code
    that holds the brand also holds its generic name (`docs_of`: the codes holding a token):
    then the brand is named by its own drug's descriptor ("Injection, trastuzumab, 10 mg and
    hyaluronidase-oysk" lists Herceptin Hylecta), not a common word, and it should also
    reach the other codes of the generic ("Injection, trastuzumab, excludes biosimilar")."""
    out: list[Rewrite] = []
    seen: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()
    for rewrite in rewrites:
        phrase = tuple(tokenize(rewrite.phrase))
        expansion = tuple(tokenize(rewrite.expansion))
        if not phrase or not expansion or phrase == expansion:
            continue
        if any(tok not in vocab for tok in expansion):
            continue
        if rewrite.name and all(tok in code_words for tok in phrase):
            if docs_of is None:
                continue
            holders = frozenset.intersection(*(docs_of(tok) for tok in phrase))
            if holders.isdisjoint(docs_of(expansion[0])):
                continue
        if "\t" in rewrite.phrase or "\n" in rewrite.phrase or (phrase, expansion) in seen:
            continue
        seen.add((phrase, expansion))
        out.append(rewrite)
    return out
