"""Typo-tolerant word search and autocomplete over every code set.

Reads the tables written by `bot.codes.search_index` from the code database. Nothing is
loaded when the engine is opened except a version check; the document arrays, the vocabulary
and the synonyms are read on the first query (a few blobs, tens of milliseconds). Posting
lists are numpy views of the index's blobs (`bot.codes.postings`), decoded per token on first
use and then kept (all of them together are about the index's size; `warm_up` decodes all).
A query's variants are scored term by term over numpy candidate arrays; only the best 20
per variant go through the Python adjacency and qualifier checks.

How a query is answered:

1. The text is tokenised exactly as the index was (folded, plural-stemmed, stopwords out).
2. Synonym phrases ("heart attack", "htn", "appendectomy") give query *variants* in which the
   phrase is replaced by its expansion; every variant is scored and a document keeps its best.
3. Each term of a variant becomes alternatives: the token itself when it is in the
   vocabulary, otherwise its nearest vocabulary tokens by `rapidfuzz` edit ratio (among
   words the same number of edits away, the commoner one by document frequency is preferred,
   and a candidate behind the best falls off steeply). Fuzzy matching runs only over the
   vocabulary (bucketed by first letter and length), never over the descriptions.
4. Candidates are documents holding every term (set intersection in C); when there are few,
   documents missing one term, then any term, are added. Large candidate sets are cut to the
   best documents by the static prior, which is simply the internal document number.
5. A candidate's score is the IDF-weighted share of terms it matches (title beats inclusion
   term/short title, exact beats fuzzy), with a penalty per missing term and per extra title
   word (general before specific), a small bonus for billable codes and for the query's words
   appearing adjacent and in order in the title, and penalties for terminated codes and for
   navigation headers (chapters, blocks, sections).
6. Generic queries get the concept's general code, not a specific one: "default" words
   ("without complications", "not elsewhere classified", "initial encounter") do not count as
   extra title words; a code whose title or chapter adds a qualifying context the query did
   not mention (pregnancy, newborn, external cause, "due to underlying condition", "history
   of", "poisoning by", sequela, device complications, quality-reporting G/M codes,
   HCPCS "Noncovered ..." items...) is
   demoted per context (`CONTEXT_FACTORS`, bits from the index's `doc_ctx`); and a code whose
   ICD-10-CM block title holds the query's words (E08-E13 "Diabetes mellitus" for "diabetes")
   gets `BLOCK_BONUS` (the block is the concept's home).
7. A code that *is* the thing asked for beats one that merely mentions it: `HEAD_BONUS` when
   the title's head word (`search_index.head_word`: "Walker, rigid" -> walker, "Crutch
   attachment, walker" -> attachment) is the query's head noun, i.e. its last word before any
   preposition ("insulin pump" -> pump); for ICD-10-PCS the head is the root operation, so any
   query word naming it counts ("hip replacement" -> Replacement of ... Hip Joint). HCPCS S
   codes (commercial payers only) get a context demotion like the quality-reporting codes.
8. Official vocabulary (`bot.codes.vocabulary`): index words (PCS index, CM tables, ICD-9
   titles) match at VOCAB_FIELD_WEIGHT of a title word; source rewrites (PCS body part,
   device and substance keys, FDA brand -> generic) are synonyms after data/synonyms.tsv.
9. Query rules (`bot.codes.query_rules`): system intent, contradicting qualifiers, soft words
   (numbers, units, routes); then hygiene (`_hygiene`, `_children_first`): terminated codes
   below valid ones, a billable code above its header. `search(..., explain=True)` fills each
   hit's `why` from the variant that scored it.
"""

from __future__ import annotations

import heapq
import math
import sqlite3
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from bot.codes.normalize import normalize_code
from bot.codes.postings import (
    EMPTY,
    DocArray,
    Mask,
    Postings,
    contains,
    decode,
    first_common,
    member,
    union,
)
from bot.codes.query_rules import (
    CM_BIT,
    FRAMING_WORDS,
    Qualifiers,
    has_negation,
    normalize_query,
    qualifier_factor,
    query_intent,
    soft_word,
)
from bot.codes.search_index import (
    CTX_COMMERCIAL,
    CTX_COMPLICATION,
    CTX_CONGENITAL,
    CTX_EXTERNAL,
    CTX_HISTORY,
    CTX_IN_SITU,
    CTX_INDUCED,
    CTX_METASTATIC,
    CTX_NONCOVERED,
    CTX_PERINATAL,
    CTX_POISONING,
    CTX_PREGNANCY,
    CTX_PRESENCE,
    CTX_QUALITY,
    CTX_SCREENING,
    CTX_SECONDARY,
    CTX_SEQUELA,
    FLAG_BILLABLE,
    FLAG_GROUP,
    FLAG_TERMINATED,
    INDEX_VERSION,
    NO_BLOCK,
    STOPWORDS,
    SYSTEM_INDEX,
    context_mask,
    fold,
    raw_words,
    stem,
    tokenize,
)
from bot.codes.sound_alike import sound_alike_spellings
from bot.codes.word_forms import WORD_FORMS, other_forms
from bot.model import CodeRef, CodeSystem, SearchHit

MAX_QUERY_CHARS = 256  # longer input is cut: nobody types a paragraph into a code search
MAX_TERMS = 10  # tokens per query after stopwords; the rest add cost and no precision
MAX_LIMIT = 100
CANDIDATE_CAP = 400  # documents scored per variant at most (the best by prior)
SKIP_ONE_CAP = 150  # few full matches: the best documents missing one term, per term
ANY_TERM_CAP = 60  # still few: the best documents holding any one term, per term
TERM_CACHE_SIZE = 20_000  # query terms kept between queries (see SearchEngine._term)
TERM_CACHE_DOCS = 4_000_000  # documents their merged lists may hold in all (16 MB)
TITLE_CACHE_SIZE = 50_000  # title token tuples kept between queries (see _Loaded.title_tokens)
UNORDERED_MAX = 4  # synonym phrases of up to this many words also match in any order
RERANK_DEPTH = 20  # documents per variant that get the title adjacency check
MAX_VARIANTS = 8
MAX_EXPANSIONS = 4  # official rewrites kept per phrase (brands list several salts)

OTHER_FIELD_WEIGHT = 0.72  # short title / inclusion term match, relative to a title match
VOCAB_FIELD_WEIGHT = 0.9  # official index term match (PCS index, CM tables)
VOCAB_COVER = 1  # title words an index term match stands for (see _score_variant)
MISSING_TERM_FACTOR = 0.55  # per query term a document does not contain
EXTRA_WORD_PENALTY = 0.022  # per title word the query did not ask for (up to 14 words)
BILLABLE_BONUS = 0.015
ADJACENCY_BONUS = 0.05
EXACT_TITLE_BONUS = 0.03
SYNONYM_VARIANT_WEIGHT = 0.97
DROPPED_TERM_FACTOR = 0.75  # per query word a variant had to leave out (unknown word)
TERMINATED_FACTOR = 0.85
GROUP_FACTOR = 0.8
AGREEMENT_BONUS = 0.03  # times a code's second-best variant score (see _score_query)
SOFT_IDF_SHARE = 0.3  # weight of a soft word (number, unit, route) in a query's IDF mass
MISSING_NUMBER_FACTOR = 0.92  # per soft query word a document lacks (doses, units, routes)
UNKNOWN_WORD_BASE_WEIGHT = 0.6  # see _variants
INTENT_FACTOR = 0.85  # a code outside the code set the query's words ask for (query_intent)
TERMINATED_RANK_SHARE = 0.5  # see _hygiene
HYGIENE_POOL = 30  # best documents reordered by _hygiene
CODE_TARGET_SCORE = 1.05  # a synonym that names a code directly outranks word matches
RARE_WORD_DF = 3  # a vocabulary word this rare may be a typo of a common one (see _alternatives)
WORD_FORM_QUALITY = 0.95  # "renal" for "kidney" (bot.codes.word_forms): nearly the word itself
FUZZY_FACTOR = 0.9  # a corrected word is never quite as good as the word itself
FUZZY_DF_WEIGHT = 3.0  # ratio points a spelling candidate loses per 10x rarer (see _fuzzy)
FUZZY_DF_SPAN = 2.0  # at most this many factors of ten count
SOUND_ALIKE_QUALITY = 0.85  # a word spelt as the typed one sounds (see _sound_alike)
SOUND_RIVAL_FACTOR = 0.7  # an edit-distance match that does not sound like the typed word
FUZZY_RIVAL_POWER = 6.0  # extra fall-off of a spelling candidate behind the best (see _fuzzy)
DEPTH_PENALTY = 0.012  # per ICD-10-CM level below the category: general before specific
PREFIX_BONUS = 0.03  # the title starts with the query's words ("Breast pump, manual")
BLOCK_BONUS = 0.04  # the code's ICD-10-CM block is named by the query: the concept's home
HEAD_BONUS = 0.06  # the title's head word is the query's head (see the module docstring)
# A title whose head is the query's head names a kind of the thing asked for: its other words
# are qualifiers of that thing, so each costs less than in a title about something else.
HEAD_EXTRA_RELIEF = 0.5
PCS_INDEX = SYSTEM_INDEX["icd10pcs"]
HEAD_SYSTEMS = frozenset({PCS_INDEX, SYSTEM_INDEX["hcpcs"]})  # ICD-10-CM: see BLOCK_BONUS
# Query words that end the query's head noun phrase: "syringe with needle" -> syringe.
HEAD_PREPOSITIONS = frozenset({"with", "without", "for", "of", "in", "on", "to", "from", "by"})
# A code whose title adds a qualifying context the query did not mention ("in pregnancy",
# "due to underlying condition", "personal history of") is a specific answer to another
# question: demote it by context. Default words ("without complications") cost nothing.
CONTEXT_FACTORS: dict[int, float] = {
    CTX_PREGNANCY: 0.88,
    CTX_PERINATAL: 0.88,
    CTX_EXTERNAL: 0.93,
    CTX_SECONDARY: 0.92,
    CTX_INDUCED: 0.92,
    CTX_HISTORY: 0.9,
    CTX_SCREENING: 0.92,
    CTX_POISONING: 0.9,
    CTX_SEQUELA: 0.92,
    CTX_PRESENCE: 0.92,
    CTX_COMPLICATION: 0.92,
    CTX_CONGENITAL: 0.94,
    CTX_QUALITY: 0.75,
    CTX_COMMERCIAL: 0.92,
    CTX_NONCOVERED: 0.8,
    CTX_METASTATIC: 0.9,
    CTX_IN_SITU: 0.9,
}


@dataclass
class _QueryMemo:
    """What the variants of one query share: qualifier factors per title (keyed with the
    variant's words when a title's negations make them matter)."""

    qualifiers: dict[tuple[int, frozenset[str] | None], float] = field(default_factory=dict)


# Qualifier axes a code may not have at all: laterality and level. A query word of one
# (its token) maps to every word of its axis.
_AXES = (frozenset({"right", "left", "bilateral"}), frozenset({"upper", "lower"}))
_AXIS_OF = {word: axis for axis in _AXES for word in axis}

# A query variant: term slots (alternative tokens with match quality), weight, slot of the
# query's head noun, and notes for --explain (synonyms applied, spelling corrections).
_Variant = tuple[list[list[tuple[str, float]]], float, int, tuple[str, ...]]
_CODE_TARGET: list[list[tuple[str, float]]] = []  # slots of a "synonym names a code" origin


class SearchIndexError(RuntimeError):
    """The database has no (or an incompatible) search index: rebuild it."""


@dataclass(frozen=True)
class _Term:
    """One query term: its alternatives (postings, match quality) and its IDF weight."""

    alts: tuple[tuple[Postings, float], ...]
    idf: float
    tokens: tuple[str, ...]
    every: DocArray  # documents holding any alternative (ascending)


@dataclass(frozen=True)
class _Synonym:
    """One expansion of a synonym phrase: replacement tokens, or a code key; where it came
    from (data/synonyms.tsv or an official source) and its text, for --explain."""

    tokens: tuple[str, ...]
    code: str = ""
    source: str = "synonyms"
    text: str = ""


class _Loaded:
    """Everything read lazily on first use."""

    def __init__(self, conn: sqlite3.Connection, synonyms_text: str | None) -> None:
        meta = dict(conn.execute("SELECT key, value FROM search_meta").fetchall())
        self.doc_ids = np.frombuffer(meta["doc_ids"], dtype=np.uint32)
        self.doc_tlen = np.frombuffer(meta["doc_tlen"], dtype=np.uint8).astype(np.int64)
        self.doc_flags = np.frombuffer(meta["doc_flags"], dtype=np.uint8)
        self.doc_depth = np.frombuffer(meta["doc_depth"], dtype=np.uint8)
        self.doc_ctx = np.frombuffer(meta["doc_ctx"], dtype=np.uint32)
        # The few distinct context combinations, and each document's one among them: a
        # query's context factors are then one small array (see `context_factors`).
        values, where = np.unique(self.doc_ctx, return_inverse=True)
        self.ctx_values: list[int] = values.tolist()
        self.doc_ctx_kind = where.astype(np.uint16 if len(values) < 65536 else np.uint32)
        self._ctx_factors: dict[int, npt.NDArray[np.float64]] = {}
        self.doc_block = np.frombuffer(meta["doc_block"], dtype=np.uint32)
        self.doc_head = np.frombuffer(meta["doc_head"], dtype=np.uint32)
        self.doc_words = np.frombuffer(meta["doc_words"], dtype=np.uint32)
        self.doc_word_start = np.frombuffer(meta["doc_word_start"], dtype=np.uint32)
        # What a hit shows, one line per document ("code TAB title TAB kind TAB status").
        shown = meta["doc_shown"]
        self.doc_shown: bytes = shown if isinstance(shown, bytes) else shown.encode("utf-8")
        breaks = np.flatnonzero(np.frombuffer(self.doc_shown, dtype=np.uint8) == 10)
        self.doc_shown_start = np.concatenate(([0], breaks + 1, [len(self.doc_shown) + 1]))
        self.n_docs = len(self.doc_ids)
        self.doc_system = self.doc_flags & 3
        # Per-document score factors that do not depend on the query (see _score_variant).
        self.depth_factor = np.where(
            self.doc_depth > 0, 1.0 - DEPTH_PENALTY * self.doc_depth.astype(np.float64), 1.0
        )
        self.billable_bonus = np.where(self.doc_flags & FLAG_BILLABLE, BILLABLE_BONUS, 0.0)
        self.status_factor = np.where(
            self.doc_flags & FLAG_TERMINATED, TERMINATED_FACTOR, 1.0
        ) * np.where(self.doc_flags & FLAG_GROUP, GROUP_FACTOR, 1.0)
        vocab_text = meta["vocab"]
        if isinstance(vocab_text, bytes):
            vocab_text = vocab_text.decode("utf-8")
        self.vocab: list[str] = vocab_text.split("\n") if vocab_text else []
        self.vocab_set = frozenset(self.vocab)
        # Title tokens of the documents reranked so far (see `title_tokens`).
        self.title_cache: dict[int, tuple[str, ...]] = {}
        # Fuzzy candidates are bucketed by first letter and length: a typo in the first
        # letter is rare, and the few buckets a word needs keep rapidfuzz well under 1 ms.
        self.buckets: dict[tuple[str, int], list[str]] = {}
        for tok in self.vocab:
            if tok.isalpha() and len(tok) >= 3:
                self.buckets.setdefault((tok[0], len(tok)), []).append(tok)
        text = synonyms_text if synonyms_text is not None else meta.get("synonyms", "")
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        rewrites = meta.get("rewrites", "")
        if isinstance(rewrites, bytes):
            rewrites = rewrites.decode("utf-8")
        self.synonyms = merge_synonyms(parse_synonyms(text), parse_rewrites(rewrites))
        self.max_phrase = max((len(k) for k in self.synonyms), default=1)
        self.synonym_words = frozenset(w for key in self.synonyms for w in key)
        # Short phrases by their sorted words, where only one phrase has those words.
        unordered: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for key in self.synonyms:
            if 2 <= len(key) <= UNORDERED_MAX and len(set(key)) == len(key):
                unordered.setdefault(tuple(sorted(key)), []).append(key)
        self.unordered = {
            words: self.synonyms[keys[0]] for words, keys in unordered.items() if len(keys) == 1
        }
        # A one-word synonym no code uses ("pseudogout", "prolia") is a word users misspell
        # too: spelling correction may read a typo as it (then the synonym applies).
        self.synonym_only = frozenset(
            key[0]
            for key in self.synonyms
            if len(key) == 1 and key[0] not in self.vocab_set and key[0].isalpha()
        )
        for tok in self.synonym_only:
            if len(tok) >= 3:
                self.buckets.setdefault((tok[0], len(tok)), []).append(tok)
        self.system_masks: dict[int, Mask] = {}

    def shown(self, doc: int) -> tuple[CodeSystem, str, str, bool, str, str]:
        """A document's system, code, title, billable flag, kind and status."""
        start, end = self.doc_shown_start[doc : doc + 2].tolist()
        code, title, kind, status = self.doc_shown[start : end - 1].decode("utf-8").split("\t")
        flags = int(self.doc_flags[doc])
        return _SYSTEMS[flags & 3], code, title, bool(flags & FLAG_BILLABLE), kind, status

    def context_factors(self, mentioned: int) -> npt.NDArray[np.float64]:
        """Demotion per distinct context combination for a query that mentions `mentioned`
        (index with `doc_ctx_kind`); kept per mask, of which there are few."""
        found = self._ctx_factors.get(mentioned)
        if found is None:
            found = np.array([_context_factor(v & ~mentioned) for v in self.ctx_values])
            if len(self._ctx_factors) < 4096:
                self._ctx_factors[mentioned] = found
        return found

    def title_tokens(self, doc: int) -> tuple[str, ...]:
        """A document's title tokens in order (stored by the index as vocabulary positions).
        Kept once built: the same few thousand codes come back query after query; the cache
        starts over past TITLE_CACHE_SIZE rather than grow with every code ever shown."""
        found = self.title_cache.get(doc)
        if found is None:
            if len(self.title_cache) >= TITLE_CACHE_SIZE:
                self.title_cache = {}
            start = self.doc_word_start
            vocab = self.vocab
            found = tuple([vocab[i] for i in self.doc_words[start[doc] : start[doc + 1]].tolist()])
            self.title_cache[doc] = found
        return found

    def system_mask(self, index: int) -> Mask:
        """Which documents belong to one code set (a mask over internal numbers)."""
        found = self.system_masks.get(index)
        if found is None:
            found = self.doc_system == index
            self.system_masks[index] = found
        return found


def parse_synonyms(text: str) -> dict[tuple[str, ...], tuple[_Synonym, ...]]:
    """Parse the synonyms file format (see data/synonyms.tsv): phrase TAB expansions.

    Expansions are separated by `|`; an expansion `@CODE` names a code directly. Phrases and
    expansions are tokenised like the index, so plurals and case do not matter.
    """
    out: dict[tuple[str, ...], list[_Synonym]] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "\t" not in line:
            continue
        phrase, _, rest = line.partition("\t")
        key = tuple(tokenize(phrase))
        if not key:
            continue
        for part in rest.split("|"):
            part = part.strip()
            if not part:
                continue
            if part.startswith("@"):
                code = normalize_code(part[1:])
                if code:
                    out.setdefault(key, []).append(_Synonym((), code))
                continue
            tokens = tuple(tokenize(part))
            if tokens and tokens != key:
                out.setdefault(key, []).append(_Synonym(tokens, text=part))
    return {k: tuple(v) for k, v in out.items()}


def parse_rewrites(text: str) -> dict[tuple[str, ...], tuple[_Synonym, ...]]:
    """Parse the index's source rewrites (lines of phrase tokens TAB expansion tokens TAB
    source TAB expansion text; see `search_index._rewrite_lines`)."""
    out: dict[tuple[str, ...], list[_Synonym]] = {}
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) != 4:
            continue
        key = tuple(parts[0].split())
        tokens = tuple(parts[1].split())
        if key and tokens:
            out.setdefault(key, []).append(_Synonym(tokens, source=parts[2], text=parts[3]))
    return {k: tuple(v) for k, v in out.items()}


def merge_synonyms(
    first: dict[tuple[str, ...], tuple[_Synonym, ...]],
    then: dict[tuple[str, ...], tuple[_Synonym, ...]],
) -> dict[tuple[str, ...], tuple[_Synonym, ...]]:
    """Synonyms of `first` (data/synonyms.tsv: our editorial choices) before those of `then`
    (official sources), at most MAX_EXPANSIONS expansions per phrase, no repeats."""
    out = dict(first)
    for key, more in then.items():
        have = out.get(key, ())
        known = {syn.tokens for syn in have}
        # An official rewrite that says less than one of ours ("lumpectomy" -> Excision,
        # beside our "excision breast") would only find the same operation on any body part.
        added = [
            syn
            for syn in more
            if syn.tokens not in known
            and not any(set(syn.tokens) < set(mine.tokens) for mine in have if not mine.code)
        ]
        if added:
            out[key] = (*have, *added)[: max(len(have), MAX_EXPANSIONS)]
    return out


class SearchEngine:
    """Word search and autocomplete over the code database's search index.

    Thread-safe: one lock serialises database access and the caches; a query takes a few
    milliseconds, so callers on an event loop may call it directly.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        owns_connection: bool = False,
        synonyms_text: str | None = None,
    ) -> None:
        self._conn = conn
        self._owns = owns_connection
        self._synonyms_text = synonyms_text
        self._lock = threading.RLock()
        self._loaded: _Loaded | None = None
        self._cache: dict[str, Postings | None] = {}
        self._pcs_words: dict[tuple[str, ...], bool] = {}
        # Terms of earlier queries ("left", "fracture" with "fractured"): merging a term's
        # alternative lists is most of building it. Bounded by the documents the merged
        # lists hold (TERM_CACHE_DOCS), then started over.
        self._terms: dict[tuple[tuple[str, float], ...], _Term | None] = {}
        self._terms_docs = 0
        try:
            row = conn.execute("SELECT value FROM search_meta WHERE key = 'version'").fetchone()
        except sqlite3.Error as exc:
            raise SearchIndexError(
                "the code database has no search index; rebuild it (codebot data build)"
            ) from exc
        version = row[0] if row else None
        if isinstance(version, bytes):
            version = version.decode()
        if version != INDEX_VERSION:
            raise SearchIndexError(
                f"search index version {version!r} != {INDEX_VERSION!r}; rebuild the database"
            )

    @classmethod
    def open(
        cls, source: sqlite3.Connection | str | Path, *, synonyms_text: str | None = None
    ) -> SearchEngine:
        """Open the engine on a connection or on a database path (opened read-only).

        `synonyms_text` overrides the synonyms stored in the database (for trying edits to
        data/synonyms.tsv without a rebuild).
        """
        if isinstance(source, sqlite3.Connection):
            return cls(source, synonyms_text=synonyms_text)
        path = Path(source)
        if not path.exists():
            raise SearchIndexError(f"code database not found: {path}")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        try:
            return cls(conn, owns_connection=True, synonyms_text=synonyms_text)
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection if the engine opened it."""
        if self._owns:
            self._conn.close()

    # ------------------------------------------------------------------ loading helpers

    def _state(self) -> _Loaded:
        if self._loaded is None:
            self._loaded = _Loaded(self._conn, self._synonyms_text)
        return self._loaded

    def warm_up(self) -> None:
        """Load the lazy parts now and decode every posting list.

        For long-running servers: queries then never wait for the database. Decoded lists
        are views of the index's blobs (plus a merged `every` list for tokens found outside
        titles), so everything together stays near the index's size (~30 MB).
        """
        with self._lock:
            state = self._state()
            state.system_mask(PCS_INDEX)  # procedure queries test words against it
            cache = self._cache
            for token, df, title, other, vocab in self._conn.execute(
                "SELECT token, df, title_ids, other_ids, vocab_ids FROM search_postings"
            ):
                if token not in cache:
                    cache[token] = decode(df, title, other, vocab)

    def _postings(self, token: str) -> Postings | None:
        # Every list decoded is kept: all of them together are about the index's size.
        cache = self._cache
        if token in cache:
            return cache[token]
        row = self._conn.execute(
            "SELECT df, title_ids, other_ids, vocab_ids FROM search_postings WHERE token = ?",
            (token,),
        ).fetchone()
        found = decode(*row) if row is not None else None
        cache[token] = found
        return found

    def _fuzzy(
        self, state: _Loaded, token: str, *, other_words: bool = False
    ) -> list[tuple[str, float]]:
        """Closest vocabulary tokens to an unknown `token`, with a match quality 0..1
        (with `other_words`, to a known one: the closest other tokens)."""
        if len(token) < 4 or not token.isalpha():
            return []
        spread = 1 if len(token) <= 5 else 2
        buckets = state.buckets
        choices = sorted(  # in vocabulary order, which breaks ties among equal ratios
            tok
            for n in range(len(token) - spread, len(token) + spread + 1)
            for tok in buckets.get((token[0], n), ())
            if not other_words or tok != token
        )
        cutoff = 80.0 if len(token) <= 6 else 78.0
        found = process.extract(token, choices, scorer=fuzz.ratio, score_cutoff=cutoff, limit=6)
        if not found:
            return []
        # Among equally close words (same edit distance) prefer the commoner one, the likelier
        # intent ("osteoperosis" is one edit from osteopetrosis and from osteoporosis, which
        # is far commoner): each rarer one loses FUZZY_DF_WEIGHT ratio points per factor of
        # ten its document frequency trails the commonest's. A word more edits away is left
        # as it is ("bronchitus": bronchitis, not the commoner bronchus).
        edits = [Levenshtein.distance(token, choice) for choice, _s, _ in found]
        fewest = min(edits)
        dfs: list[float] = []
        for (choice, _score, _), n_edits in zip(found, edits, strict=True):
            post = self._postings(choice) if n_edits == fewest else None
            if post is None and n_edits == fewest and choice in state.synonym_only:
                dfs.append(0.0)  # a synonym no code uses: as rare as the rarest word
                continue
            dfs.append(math.log10(post.df) if post is not None and post.df > 0 else -1.0)
        top_df = max(dfs)
        adjusted = [
            (choice, score - FUZZY_DF_WEIGHT * min(top_df - d, FUZZY_DF_SPAN) if d >= 0 else score)
            for (choice, score, _), d in zip(found, dfs, strict=True)
        ]
        best = max(score for _, score in adjusted)
        # A candidate behind the best one is a less likely reading: its quality falls off
        # steeply with the gap, so it only wins where the best one does not match at all.
        out = [
            (choice, (score / 100.0) ** 2 * (score / best) ** FUZZY_RIVAL_POWER)
            for choice, score in adjusted
            if score >= best - 6
        ]
        out.sort(key=lambda cq: -cq[1])
        return out[:3]

    def _alternatives(
        self, state: _Loaded, token: str, allow_fuzzy: bool
    ) -> list[tuple[str, float]]:
        """Vocabulary tokens standing for one query token: itself, else fuzzy matches."""
        if token in state.vocab_set:
            found = [(token, 1.0), *self._word_forms(token, WORD_FORM_QUALITY)]
            post = self._postings(token)
            if allow_fuzzy and post is not None and post.df <= RARE_WORD_DF:
                # A word only an abbreviation or two use ("acut" in a short title) is more
                # likely a typo of a common word: offer that too ("acute").
                for choice, quality in self._fuzzy(state, token, other_words=True):
                    common = self._postings(choice)
                    if choice != token and common is not None and common.df >= 100 * post.df:
                        found.append((choice, quality * FUZZY_FACTOR))
            return found
        if not allow_fuzzy:
            return []
        found = self._fuzzy(state, token) or _silent_lead_fuzzy(self, state, token)
        sounds = self._sound_alike(state, token, deep=not found)
        if sounds:
            # Spelt as it sounds ("nefrectomy", "exema"): the word that sounds the same is
            # the likelier reading than a nearer one that sounds different ("edema").
            best = max((quality for _, quality in found), default=SOUND_ALIKE_QUALITY)
            found = [(sounds, max(best, SOUND_ALIKE_QUALITY))] + [
                (choice, quality * SOUND_RIVAL_FACTOR)
                for choice, quality in found
                if choice != sounds
            ]
        return [(choice, quality * FUZZY_FACTOR) for choice, quality in found[:3]]

    def _word_forms(self, token: str, quality: float) -> list[tuple[str, float]]:
        """The other forms of a token (`bot.codes.word_forms`) that codes use, at `quality`."""
        vocab = self._state().vocab_set
        return [(form, quality) for form in other_forms(token) if form in vocab]

    def _sound_alike(self, state: _Loaded, token: str, *, deep: bool) -> str | None:
        """The commonest vocabulary word spelt as `token` sounds (one substitution; with
        `deep`, else two: the hundreds of two-step spellings are tried only when edit
        distance found nothing; see `bot.codes.sound_alike`), or None."""
        if len(token) < 4:
            return None
        first, second = sound_alike_spellings(token, deep=deep)
        for spellings in (first, second):
            known = [s for s in spellings if s in state.vocab_set or s in state.synonym_only]
            if known:
                posts = [(self._postings(s), s) for s in sorted(known)]
                return max(posts, key=lambda ps: ps[0].df if ps[0] is not None else -1)[1]
        return None

    def _term(self, state: _Loaded, alts_in: Sequence[tuple[str, float]]) -> _Term | None:
        """Postings and IDF of one query term given its alternative tokens (kept)."""
        key = tuple(alts_in)
        if key in self._terms:
            return self._terms[key]
        term = self._new_term(state, alts_in)
        merged = len(term.every) if term is not None and len(term.alts) > 1 else 0
        if self._terms_docs + merged > TERM_CACHE_DOCS or len(self._terms) >= TERM_CACHE_SIZE:
            self._terms, self._terms_docs = {}, 0
        self._terms[key] = term
        self._terms_docs += merged
        return term

    def _new_term(self, state: _Loaded, alts_in: Sequence[tuple[str, float]]) -> _Term | None:
        alts: list[tuple[Postings, float]] = []
        names: list[str] = []
        for tok, quality in alts_in:
            post = self._postings(tok)
            if post is not None:
                alts.append((post, quality))
                names.append(tok)
        if not alts:
            return None
        df = max(p.df for p, _ in alts)
        idf = math.log(1.0 + state.n_docs / max(df, 1))
        every = union([p.every for p, _ in alts])
        return _Term(tuple(alts), idf, tuple(names), every)

    # ------------------------------------------------------------------ search

    def search(
        self,
        query: str,
        system: CodeSystem | str | None = None,
        limit: int = 10,
        *,
        explain: bool = False,
    ) -> list[SearchHit]:
        """Best codes for a free-text query, best first (at most `limit`).

        With `explain`, each hit's `why` says which words matched where (title, inclusion
        terms, official index terms) and which synonyms, brand names or spelling corrections
        led to it. Never raises for odd input (empty, huge, emoji, control characters): such
        queries simply return fewer or no hits.
        """
        if not isinstance(query, str) or limit <= 0:
            return []
        limit = min(limit, MAX_LIMIT)
        sys_index = _system_index(system)
        if sys_index == -1:
            return []
        text = normalize_query(query[:MAX_QUERY_CHARS])
        tokens = tokenize(text)[:MAX_TERMS]
        if not tokens:
            return []
        head = _head_position(text, len(tokens))
        intent = query_intent(text)
        qualifiers = Qualifiers.of(tokens)
        with self._lock:
            state = self._state()
            if qualifiers.without:
                # "w/o fb": a title "with foreign body" answers another question too.
                readings = frozenset(
                    tok
                    for word in qualifiers.without
                    for exp in state.synonyms.get((word,), ())
                    for tok in exp.tokens
                    if tok != word
                )
                if readings:
                    qualifiers = qualifiers.also_absent(readings)
            origin: dict[int, int] | None = {} if explain else None
            scores, variants = self._score_query(
                state, tokens, sys_index, head, origin, intent, qualifiers
            )
            if not scores:
                return []
            pool = heapq.nlargest(
                max(limit, HYGIENE_POOL), scores.items(), key=lambda kv: (kv[1], -kv[0])
            )
            best = _hygiene(state, pool)[:limit]
            hits = self._hits(state, best)
            if len(hits) == len(best):
                order = _children_first(hits)
                hits = [hits[i] for i in order]
                best = [best[i] for i in order]
            # Scores follow the final order (hygiene may lift a code above a better score).
            ceiling = math.inf
            for i, hit in enumerate(hits):
                if hit.score > ceiling:
                    hits[i] = replace(hit, score=ceiling)
                ceiling = hits[i].score
            if origin is not None:
                hits = [
                    replace(hit, why=self._why(state, doc, variants[origin.get(doc, 0)]))
                    for hit, (doc, _score) in zip(hits, best, strict=False)
                ]
            return hits

    def _score_query(
        self,
        state: _Loaded,
        tokens: list[str],
        sys_index: int | None,
        head: int = -1,
        origin: dict[int, int] | None = None,
        intent: int = 0,
        qualifiers: Qualifiers | None = None,
    ) -> tuple[dict[int, float], list[_Variant]]:
        """Scores of every candidate document, and the variants scored. With `origin`, also
        records for each document the variant that gave its score (-1 - i: code target i)."""
        variants, code_keys = self._variants(state, tokens, head)
        code_keys = [*code_keys, *self._named_modifiers(tokens)]
        scores: dict[int, float] = {}
        allowed = state.system_mask(sys_index) if sys_index is not None else None
        said: set[str] = set(tokens)
        for slots, _weight, _head, _notes in variants:
            for alts in slots:
                said.update(tok for tok, _ in alts)
        mentioned = context_mask(said)
        seconds: dict[int, float] = {}
        memo = _QueryMemo()
        done: set[frozenset[tuple[str, ...]]] = set()
        for number, (slots, weight, head_slot, _notes) in enumerate(variants):
            terms: list[_Term] = []
            head_term: _Term | None = None
            dropped = 0
            for k, alts in enumerate(slots):
                # Variants share most of their terms: `_term` keeps them across queries too.
                term = self._term(state, alts) if alts else None
                if term is None:
                    dropped += 1
                elif all(t.tokens != term.tokens for t in terms):  # a repeat adds nothing
                    terms.append(term)
                    if k == head_slot:
                        head_term = term
            signature = frozenset(t.tokens for t in terms)
            if signature in done:
                continue
            done.add(signature)
            if not terms:
                continue
            factor = weight * DROPPED_TERM_FACTOR**dropped
            heads = _vocab_positions(state.vocab, head_term.tokens if head_term else ())
            scored = self._score_variant(
                state, terms, allowed, mentioned, heads, intent, qualifiers, memo
            )
            for doc, score in scored.items():
                s = score * factor
                old = scores.get(doc, 0.0)
                if s > old:
                    scores[doc] = s
                    if old > seconds.get(doc, 0.0):
                        seconds[doc] = old
                    if origin is not None:
                        origin[doc] = number
                elif s > seconds.get(doc, 0.0):
                    seconds[doc] = s
        # A code that also answers another reading of the query (the words as typed and a
        # synonym's expansion) is the likelier answer among equals.
        for doc, second in seconds.items():
            scores[doc] += AGREEMENT_BONUS * second
        for k, (key, coverage, _note) in enumerate(code_keys):
            for doc in self._docs_for_key(state, key):
                if allowed is not None and not allowed[doc]:
                    continue
                s = CODE_TARGET_SCORE * coverage
                if s > scores.get(doc, 0.0):
                    scores[doc] = s
                    if origin is not None:
                        origin[doc] = -1 - k
        if origin is not None:
            variants = [*variants, *((_CODE_TARGET, 0.0, -1, (note,)) for _, _, note in code_keys)]
        return scores, variants

    def _variants(
        self, state: _Loaded, tokens: list[str], head: int = -1, *, join: bool = True
    ) -> tuple[list[_Variant], list[tuple[str, float, str]]]:
        """Query variants (term alternatives, weight, slot of the query's head noun) and codes
        named directly by synonyms.

        Unknown words are spelling-corrected first, so that "diabtes" still reaches the
        synonyms of "diabetes"; a word that is itself a synonym key ("htn") is left alone.
        A phrase replaced by an expansion that holds the head hands it to the expansion's last
        word ("prosthetic leg" -> "lower extremity prosthesis": prosthesis).
        """
        syn = state.synonyms
        syn_words = state.synonym_words
        split = self._split_at(state, tokens) if join else None
        if split is not None:
            # "pinkeye" -> "pink eye": a word no code uses, typed without its space.
            at, first, second = split
            apart = [*tokens[:at], first, second, *tokens[at + 1 :]]
            parts, named = self._variants(state, apart, head if head < at else head + 1)
            note = f'"{tokens[at]}" read as "{first} {second}"'
            return [(v[0], v[1], v[2], (note, *v[3])) for v in parts], named
        joined = _compound_at(state, tokens) if join else -1
        if joined >= 0:
            # "chicken pox" -> chickenpox: the words typed apart form one vocabulary word (or
            # synonym). Both readings are scored; the joined one comes first after the base.
            word = stem(tokens[joined] + tokens[joined + 1])
            merged = [*tokens[:joined], word, *tokens[joined + 2 :]]
            moved = head if head < 0 else _moved_head(head, joined, joined + 2, 1)
            base, base_codes = self._variants(state, tokens, head, join=False)
            more, more_codes = self._variants(state, merged, moved, join=False)
            joined_note = f'"{tokens[joined]} {tokens[joined + 1]}" read as "{word}"'
            more = [(v[0], v[1], v[2], (joined_note, *v[3])) for v in more]
            return (base[:1] + more + base[1:])[:MAX_VARIANTS], base_codes + more_codes
        slots: list[list[tuple[str, float]]] = []
        surface: list[str] = []
        slot_notes: list[str] = []
        for tok in tokens:
            # A one-word synonym key is never respelled ("htn"); a word of a longer phrase
            # is, but the phrase is still matched on the word as typed ("ingrown nail").
            alts = self._alternatives(state, tok, allow_fuzzy=(tok,) not in syn)
            slots.append(alts)
            surface.append(tok if tok in syn_words or not alts else alts[0][0])
            if alts and alts[0][0] != tok:
                slot_notes.append(f'spelling: "{tok}" read as "{alts[0][0]}"')
            else:
                slot_notes.append("" if alts else f'"{tok}": no code uses this word')
        base_notes = tuple(n for n in slot_notes if n)
        # (start, end, expansions, position of a side word inside the phrase or -1)
        matches: list[tuple[int, int, tuple[_Synonym, ...], int]] = []
        i = 0
        while i < len(surface):
            match: tuple[int, int, tuple[_Synonym, ...], int] | None = None
            for n in range(min(state.max_phrase, len(surface) - i), 0, -1):
                span = tuple(surface[i : i + n])
                # The same words in another order name the same thing ("blood pressure
                # high", "rotator cuff tear traumatic"): short phrases match unordered.
                found = syn.get(span) or (
                    state.unordered.get(tuple(sorted(span))) if 2 <= n <= UNORDERED_MAX else None
                )
                if found:
                    match = (i, i + n, found, -1)
                    break
            # A longer phrase that a side or body-part word interrupts wins ("orif right ankle
            # fracture" holds "orif ankle"): that word stays a query word, after the expansion.
            match = _side_inside(surface, i, syn, state.unordered, state.max_phrase, match)
            if match is not None:
                matches.append(match)
                i = match[1]
            else:
                i += 1
        if head < 0:
            head = len(tokens) - 1
        # A word no code uses that a synonym explains ("prolia" -> denosumab): the base
        # reading, which just drops the word, is a worse guess than the synonym's.
        explained = {j for start, end, _, _ in matches for j in range(start, end) if not slots[j]}
        base_weight = UNKNOWN_WORD_BASE_WEIGHT if explained else 1.0
        variants: list[_Variant] = [(slots, base_weight, head, base_notes)]
        codes: list[tuple[str, float, str]] = []
        for start, end, expansions, side in matches:
            quality = min((slots[j][0][1] if slots[j] else 1.0) for j in range(start, end))
            coverage = (end - start) / len(tokens)
            phrase = " ".join(w for j, w in enumerate(surface[start:end], start) if j != side)
            kept_side = [slots[side]] if side >= 0 else []
            for exp in expansions:
                note = _synonym_note(phrase, exp)
                if exp.code:
                    codes.append((exp.code, coverage * quality, note))
                    continue
                expansion = _exact_slots(exp.tokens, quality, self._word_forms) + kept_side
                new = slots[:start] + expansion + slots[end:]
                moved = _moved_head(head, start, end, len(expansion))
                kept = [
                    n
                    for j, n in enumerate(slot_notes)
                    if n and (not start <= j < end or n.startswith("spelling"))
                ]
                weight = SYNONYM_VARIANT_WEIGHT
                if any(not start <= j < end for j in explained):
                    weight *= UNKNOWN_WORD_BASE_WEIGHT  # leaves out a word a synonym explains
                variants.append((new, weight, moved, (*kept, note)))
        if len(matches) > 1:
            # Every phrase replaced by its first word expansion at once.
            combined = list(slots)
            moved = head
            covered = {j for start, end, _, _ in matches for j in range(start, end)}
            notes = [
                n
                for j, n in enumerate(slot_notes)
                if n and (j not in covered or n.startswith("spelling"))
            ]
            for start, end, expansions, side in reversed(matches):
                words = [e for e in expansions if not e.code]
                if words:
                    expansion = _exact_slots(words[0].tokens, 1.0, self._word_forms)
                    if side >= 0:
                        expansion.append(slots[side])
                    combined[start:end] = expansion
                    moved = _moved_head(moved, start, end, len(expansion))
                    phrase = " ".join(
                        w for j, w in enumerate(surface[start:end], start) if j != side
                    )
                    notes.append(_synonym_note(phrase, words[0]))
            variants.append((combined, SYNONYM_VARIANT_WEIGHT, moved, tuple(notes)))
        return variants[:MAX_VARIANTS], codes

    def _named_modifiers(self, tokens: Sequence[str]) -> list[tuple[str, float, str]]:
        """HCPCS modifiers the query names with the word "modifier" ("gp modifier",
        "modifier 59 xs"), as code targets: the modifier itself answers."""
        if "modifier" not in tokens and "mod" not in tokens:
            return []
        found: list[tuple[str, float, str]] = []
        for token in tokens:
            key = normalize_code(token)
            if len(key) != 2 or not key.isalnum():
                continue
            row = self._conn.execute(
                "SELECT 1 FROM codes WHERE key = ? AND kind = 'modifier' LIMIT 1", (key,)
            ).fetchone()
            if row is not None:
                found.append((key, 1.0, f'modifier named: "{token}" -> {key}'))
        return found

    def _split_at(self, state: _Loaded, tokens: Sequence[str]) -> tuple[int, str, str] | None:
        """The first word no code uses that is two words run together: a synonym phrase
        ("pinkeye"), or two vocabulary words when no spelling correction is near."""
        for at, token in enumerate(tokens):
            if (
                len(token) < 6
                or not token.isalpha()
                or token in state.vocab_set
                or token in state.synonym_words
            ):
                continue
            known: tuple[int, str, str] | None = None
            for cut in range(3, len(token) - 2):
                first, second = token[:cut], stem(token[cut:])
                if (first, second) in state.synonyms:
                    return at, first, second
                if known is None and first in state.vocab_set and second in state.vocab_set:
                    known = (at, first, second)
            if known is not None and not self._fuzzy(state, token):
                return known
        return None

    def _docs_for_key(self, state: _Loaded, key: str) -> list[int]:
        ids = [r[0] for r in self._conn.execute("SELECT id FROM codes WHERE key = ?", (key,))]
        if not ids:
            return []
        # A code named by a synonym is rare; the scan of every document runs only then.
        found: list[int] = np.flatnonzero(np.isin(state.doc_ids, ids)).tolist()
        return found

    def _score_variant(
        self,
        state: _Loaded,
        terms: list[_Term],
        allowed: Mask | None,
        mentioned: int = 0,
        heads: frozenset[int] = frozenset(),
        intent: int = 0,
        qualifiers: Qualifiers | None = None,
        memo: _QueryMemo | None = None,
    ) -> dict[int, float]:
        numeric = [soft_word(t.tokens[0]) for t in terms]
        # "status post" frames a status query: an ICD-10-CM title need not say it.
        framing = [
            intent == CM_BIT and len(t.tokens) == 1 and t.tokens[0] in FRAMING_WORDS for t in terms
        ]
        picking = [
            term.every
            # Soft words (numbers, units, single letters) score but do not pick candidates.
            for term, soft, frame in zip(terms, numeric, framing, strict=True)
            if not (soft or frame) or all(numeric)
        ] or [term.every for term in terms]
        content = [
            term.every
            for term, soft in zip(terms, numeric, strict=True)
            if not soft and not (len(term.tokens) == 1 and term.tokens[0] in _AXIS_OF)
        ]
        # Codes without the side or level asked for ("Lobar pneumonia" for "left lower lobe
        # pneumonia"): they have no such axis, and compete on the other words.
        without_axis = (
            [_candidates(content, allowed, SKIP_ONE_CAP, SKIP_ONE_CAP)]
            if 0 < len(content) < len(picking)
            else []
        )
        cands = _candidates(picking, allowed, CANDIDATE_CAP, SKIP_ONE_CAP, without_axis)
        if not len(cands):
            return {}

        total_idf = sum(
            t.idf * (SOFT_IDF_SHARE if soft else 1.0)
            for t, soft in zip(terms, numeric, strict=True)
        )
        system = state.doc_system[cands]
        # ICD-10-PCS heads are root operations: any query word may name one.
        operations = _vocab_positions(state.vocab, [tok for t in terms for tok in t.tokens])
        # Doses, units and routes rarely match a descriptor exactly ("Prolia 60 mg" is billed
        # per 1 mg; "1 gram im" for a drug billed "per 250 mg"): a missing one costs little.
        # With a procedure query, a diagnosis word no PCS code uses ("abscess" in "i&d
        # abscess left thigh") says why, not what: for PCS codes it is soft too.
        pcs_soft = (
            [not self._has_pcs(state, t) for t in terms]
            if intent == 1 << PCS_INDEX
            else [False] * len(terms)
        )
        # Term by term over the candidate array (binary searches in numpy).
        n = len(cands)
        matched = np.zeros(n)
        title_hits = np.zeros(n, dtype=np.int64)
        hard_missing = np.zeros(n, dtype=np.int64)
        soft_missing = np.zeros(n, dtype=np.int64)
        flat: list[tuple[float, list[tuple[Postings, float]]]] = []
        for k, term in enumerate(terms):
            idf = term.idf * (SOFT_IDF_SHARE if numeric[k] else 1.0)
            flat.append((idf, list(term.alts)))
            best, in_title, in_vocab = _best_alternatives(cands, term.alts)
            present = best > 0.0
            matched += idf * best
            # An index term names what the title says in other words ("appendectomy" =
            # "Resection of Appendix"): those title words are asked for, not extra.
            title_hits += in_title
            title_hits += VOCAB_COVER * (in_vocab & ~in_title & present)
            missing = ~present
            axis = _AXIS_OF.get(term.tokens[0]) if len(term.tokens) == 1 else None
            if axis is not None and missing.any():
                # A side or level the title does not state at all ("Lobar pneumonia" for
                # "left lower lobe pneumonia"): the code has no such axis, so the word
                # costs little; a title stating another one is a contradiction (hard).
                states = np.zeros(n, dtype=np.bool_)
                for side in axis:
                    post = self._postings(side)
                    if post is not None:
                        states |= member(post.title, cands)
                soft_missing += missing & ~states
                hard_missing += missing & states
            elif numeric[k]:
                soft_missing += missing
            elif pcs_soft[k]:
                is_pcs = system == PCS_INDEX
                soft_missing += missing & is_pcs
                hard_missing += missing & ~is_pcs
            elif framing[k]:
                is_cm = system == SYSTEM_INDEX["icd10cm"]
                soft_missing += missing & is_cm
                hard_missing += missing & ~is_cm
            else:
                hard_missing += missing
        score = matched / total_idf
        score *= MISSING_TERM_FACTOR**hard_missing
        score *= MISSING_NUMBER_FACTOR**soft_missing
        head = state.doc_head[cands]
        is_head = np.zeros(n, dtype=np.bool_)
        # (A handful of words: one comparison each beats numpy.isin's set-up.)
        if operations:
            named = np.zeros(n, dtype=np.bool_)
            for position in operations:
                named |= head == position
            is_head |= named & (system == PCS_INDEX)
        if heads:
            named = np.zeros(n, dtype=np.bool_)
            for position in heads:
                named |= head == position
            is_head |= named & (system == SYSTEM_INDEX["hcpcs"])
        extra = state.doc_tlen[cands] - title_hits
        per_word = np.where(is_head, EXTRA_WORD_PENALTY * HEAD_EXTRA_RELIEF, EXTRA_WORD_PENALTY)
        score *= np.where(extra > 0, 1.0 - per_word * np.minimum(extra, 14), 1.0)
        score *= state.depth_factor[cands]
        score += state.billable_bonus[cands]
        score *= state.status_factor[cands]
        score *= state.context_factors(mentioned)[state.doc_ctx_kind[cands]]
        block = state.doc_block[cands]
        in_block = block != NO_BLOCK
        if in_block.any():
            blocks, where = np.unique(block[in_block], return_inverse=True)
            shares = _title_shares(flat, blocks) / total_idf
            score[in_block] += BLOCK_BONUS * shares[where]
        score += np.where(is_head, HEAD_BONUS, 0.0)
        if intent:
            score *= np.where((intent >> system.astype(np.int64)) & 1, 1.0, INTENT_FACTOR)
        # Best first; ties go to the better prior (the smaller internal number).
        order = np.lexsort((cands, -score))[:RERANK_DEPTH]
        top = list(zip(score[order].tolist(), cands[order].tolist(), strict=True))
        return self._rerank(state, terms, top, qualifiers, memo)

    def _has_pcs(self, state: _Loaded, term: _Term) -> bool:
        """Does any ICD-10-PCS code hold one of the term's tokens (cached per token set)?"""
        found = self._pcs_words.get(term.tokens)
        if found is None:
            pcs = state.system_mask(PCS_INDEX)
            found = any(bool(pcs[p.every].any()) for p, _ in term.alts)
            self._pcs_words[term.tokens] = found
        return found

    def _rerank(
        self,
        state: _Loaded,
        terms: Sequence[_Term],
        top: list[tuple[float, int]],
        qualifiers: Qualifiers | None = None,
        memo: _QueryMemo | None = None,
    ) -> dict[int, float]:
        """Bonus for the query's words adjacent and in order in the title; demotion for a
        title whose qualifiers contradict the query's (see `qualifier_factor`)."""
        out = {doc: score for score, doc in top}
        if not top:
            return out
        if memo is None:
            memo = _QueryMemo()
        words_of = {doc: state.title_tokens(doc) for _, doc in top}
        query_alts = [set(t.tokens) for t in terms]
        said = frozenset().union(*query_alts)  # the variant's words: synonyms, corrections
        pairs = len(terms) - 1
        # token -> positions of the query terms it stands for
        slots_of: dict[str, tuple[int, ...]] = {}
        for k, alts in enumerate(query_alts):
            for tok in alts:
                slots_of[tok] = (*slots_of.get(tok, ()), k)
        for score, doc in top:
            words = words_of.get(doc, ())
            if not words:
                continue
            bonus = 0.0
            if pairs:
                # Query term pairs (k, k+1) found as adjacent title words, each counted once.
                found: set[int] = set()
                at = [slots_of.get(w, ()) for w in words]
                for j in range(len(words) - 1):
                    if at[j] and at[j + 1]:
                        nxt = at[j + 1]
                        found.update(k for k in at[j] if k + 1 in nxt)
                bonus = ADJACENCY_BONUS * len(found) / pairs
            if len(words) >= len(terms) and all(
                w in alts for w, alts in zip(words, query_alts, strict=False)
            ):
                bonus += PREFIX_BONUS
                if len(words) == len(terms):
                    bonus += EXACT_TITLE_BONUS
            elif (
                pairs
                and len(words) == len(terms)
                and all(at)
                and len({k for slots in at for k in slots}) == len(terms)
            ):
                # The title is the query's words in another order ("Lower right, eyelid"
                # for "right lower eyelid"): as exact an answer, if not the typed phrase.
                bonus += PREFIX_BONUS + EXACT_TITLE_BONUS
            factor = 1.0
            if qualifiers is not None:
                # As typed, or a title that negates nothing: the same for every variant.
                # Otherwise a title may negate one of the variant's synonym or spelling words.
                as_typed = said <= qualifiers.tokens or not has_negation(words)
                key = (doc, None if as_typed else said)
                cached = memo.qualifiers.get(key)
                if cached is None:
                    cached = qualifier_factor(qualifiers, words, frozenset() if as_typed else said)
                    memo.qualifiers[key] = cached
                factor = cached
            out[doc] = (score + bonus) * factor
        return out

    def _why(self, state: _Loaded, doc: int, variant: _Variant) -> tuple[str, ...]:
        """Why `doc` matched `variant`: one line per query word, then the variant's notes."""
        slots, _weight, _head, notes = variant
        if slots is _CODE_TARGET:
            return notes
        row = self._conn.execute(
            "SELECT system, key FROM codes WHERE id = ?", (int(state.doc_ids[doc]),)
        ).fetchone()
        system, key = row if row else ("", "")
        lines: list[str] = []
        in_title: list[str] = []
        for alts in slots:
            found = ""
            for tok, _quality in alts:
                post = self._postings(tok)
                if post is None:
                    continue
                if contains(post.title, doc):
                    if tok not in in_title:
                        in_title.append(tok)
                    found = "title"
                    break
                if contains(post.vocab, doc):
                    terms = self._index_terms(system, key, tok)
                    lines.append(f'"{tok}": index term ' + "; ".join(terms[:2]))
                    found = "vocab"
                    break
                if contains(post.other, doc):
                    lines.append(f'"{tok}": in an inclusion term or short title')
                    found = "other"
                    break
            if not found and alts:
                lines.append(f'"{alts[0][0]}": not in this code')
        if in_title:
            lines.insert(0, "title words: " + ", ".join(in_title))
        return (*lines, *notes)

    def _index_terms(self, system: str, key: str, token: str) -> list[str]:
        """The official index terms (source: term) holding `token` that point to `key`."""
        prefixes = [key[:n] for n in range(3, len(key) + 1)]
        marks = ",".join("?" * len(prefixes))
        rows = self._conn.execute(
            f"SELECT source, term FROM search_vocab WHERE system = ? AND target IN ({marks})",
            [system, *prefixes],
        ).fetchall()
        return [f"({source}) {term}" for source, term in rows if token in tokenize(term)]

    def _hits(self, state: _Loaded, best: list[tuple[int, float]]) -> list[SearchHit]:
        hits: list[SearchHit] = []
        for doc, score in best:
            system, code, title, billable, kind, status = state.shown(doc)
            hits.append(SearchHit(system, code, title, round(score, 4), billable, kind, status))
        return hits

    # ------------------------------------------------------------------ autocomplete

    def autocomplete(self, prefix: str, limit: int = 25) -> list[CodeRef]:
        """Suggestions while a user types: codes starting with a code prefix ("E11",
        "0DT") or codes whose words start with the typed word prefixes ("diab typ").

        At most `limit` (≤ 25, Discord's cap) results; never raises for odd input.
        """
        if not isinstance(prefix, str):
            return []
        limit = max(0, min(limit, 25))
        text = prefix[:MAX_QUERY_CHARS].strip()
        if not text or limit == 0:
            return []
        with self._lock:
            state = self._state()
            out: list[CodeRef] = []
            words = text.split()
            if len(words) == 1 and _code_like(words[0]):
                out = self._code_prefix(normalize_code(words[0]), limit)
                if len(out) >= limit or any(ch.isdigit() for ch in words[0]):
                    return out[:limit]
            seen = {(r.system, r.code) for r in out}
            searched: list[SearchHit] | None = None  # one full search serves both uses
            if tuple(tokenize(text)) in state.synonyms:
                # The whole input is a known abbreviation or lay term ("htn", "heart
                # attack"): its expansion beats words that merely start with it.
                searched = self.search(text, limit=limit)
                for hit in searched[:10]:
                    out.append(CodeRef(hit.system, hit.code, hit.title, hit.billable))
                    seen.add((hit.system, hit.code))
            for ref in self._word_prefix(state, text, limit):
                if (ref.system, ref.code) not in seen:
                    out.append(ref)
                    seen.add((ref.system, ref.code))
                    if len(out) >= limit:
                        return out
            if len(text) >= 3:
                # Few prefix matches: the full search adds synonyms and spelling
                # ("broken ar" -> fractures of the arm, "pnuemonia").
                if searched is None:
                    searched = self.search(text, limit=limit)
                for hit in searched:
                    if (hit.system, hit.code) not in seen:
                        out.append(CodeRef(hit.system, hit.code, hit.title, hit.billable))
                        seen.add((hit.system, hit.code))
                        if len(out) >= limit:
                            break
            return out

    def _code_prefix(self, key: str, limit: int) -> list[CodeRef]:
        if not key:
            return []
        # A letters-only token (a modifier such as "RT", or a word) matches exact keys only:
        # a range scan for "R" would list every R code before any word match.
        if key.isalpha():
            sql = "SELECT system, code, title, billable FROM codes WHERE key = ? LIMIT ?"
            rows = self._conn.execute(sql, (key, limit)).fetchall()
        else:
            sql = (
                "SELECT system, code, title, billable FROM codes WHERE key >= ? AND key < ?"
                " AND kind NOT IN ('chapter', 'block', 'section', 'body_system')"
                " ORDER BY key, system LIMIT ?"
            )
            rows = self._conn.execute(sql, (key, key + "\U0010ffff", limit)).fetchall()
        return [CodeRef(CodeSystem(s), c, t, bool(b)) for s, c, t, b in rows]

    def _prefix_tokens(self, prefix: str, cap: int = 48) -> list[str]:
        """The commonest vocabulary tokens starting with `prefix` (folded, and stemmed).

        A one-letter prefix matches too much to be useful, so it needs at least two letters.
        """
        prefix = fold(prefix)
        if len(prefix) < 2:
            return []
        out: list[str] = []
        for form in sorted({prefix, stem(prefix)}, key=len):
            rows = self._conn.execute(
                "SELECT token FROM search_postings WHERE token >= ? AND token < ?"
                " ORDER BY df DESC LIMIT ?",
                (form, form + "\U0010ffff", cap),
            )
            out.extend(r[0] for r in rows if r[0] not in out)
        return out[:cap]

    def _word_prefix(self, state: _Loaded, text: str, limit: int) -> list[CodeRef]:
        words = raw_words(text)[:MAX_TERMS]
        if not words:
            return []
        last = words[-1]
        full = [stem(w) for w in words[:-1] if w not in STOPWORDS]
        sets: list[DocArray] = []
        for tok in full:
            # Earlier words may be prefixes too ("diab typ"; "diab" is also a word of its
            # own in HCPCS short titles): every word starting with it, else the nearest
            # spelling.
            alts = [(t, 1.0) for t in self._prefix_tokens(tok, cap=24)]
            if not alts:
                alts = self._alternatives(state, tok, allow_fuzzy=True)
            term = self._term(state, alts) if alts else None
            if term is None:
                continue  # an unknown whole word should not empty the list
            sets.append(term.every)
        prefixes = self._prefix_tokens(last)
        fixed: DocArray | None = None
        if sets:
            sets.sort(key=len)
            fixed = sets[0]
            for other in sets[1:]:
                fixed = fixed[member(other, fixed)]
        picked: list[int] = []
        if prefixes:
            posts = [p for p in map(self._postings, prefixes) if p is not None]
            # Title matches first, then short-title/inclusion-term matches; within each,
            # ascending internal number = the static generality order.
            for in_title in (True, False):
                picked.extend(_prefix_docs(posts, in_title, fixed, limit - len(picked), picked))
                if len(picked) >= limit:
                    break
        elif fixed is not None:
            picked = fixed[:limit].tolist()
        out: list[CodeRef] = []
        for doc in picked[:limit]:
            system, code, title, billable, _kind, _status = state.shown(int(doc))
            out.append(CodeRef(system, code, title, billable))
        return out


# ---------------------------------------------------------------------- helpers

_SYSTEMS = {index: CodeSystem(name) for name, index in SYSTEM_INDEX.items()}


# Words whose first letter is silent are typed without it ("neumonia", "soriasis"); the
# spelling buckets are by first letter, so such a word is tried again with the letter put back.
SILENT_LEADS: dict[str, tuple[str, ...]] = {"n": ("p", "k", "g", "m"), "s": ("p",), "t": ("p",)}


def _silent_lead_fuzzy(engine: SearchEngine, state: _Loaded, token: str) -> list[tuple[str, float]]:
    """Spelling candidates of `token` with a silent first letter restored (see SILENT_LEADS)."""
    for lead in SILENT_LEADS.get(token[:1], ()):
        found = engine._fuzzy(state, lead + token)
        if found:
            return found
    return []


def _system_index(system: CodeSystem | str | None) -> int | None:
    """Index of a system filter; -1 for an unknown name (no results rather than all)."""
    if system is None or system == "":
        return None
    return SYSTEM_INDEX.get(str(system).lower(), -1)


def _best_alternatives(
    docs: DocArray, alts: Sequence[tuple[Postings, float]]
) -> tuple[npt.NDArray[np.float64], Mask, Mask]:
    """Each document's best match among a term's alternatives: (quality, in a title,
    through an index term). Any title match beats index and inclusion-term matches; among
    the others the best weighted quality wins."""
    if len(alts) == 1:
        post, quality = alts[0]
        in_title = member(post.title, docs)
        if not len(post.vocab) and not len(post.other):  # most words: titles only
            return np.where(in_title, quality, 0.0), in_title, np.zeros(len(docs), np.bool_)
        in_vocab = member(post.vocab, docs)
        in_other = member(post.other, docs)
        best = np.where(
            in_title,
            quality,
            np.where(
                in_vocab,
                quality * VOCAB_FIELD_WEIGHT,
                np.where(in_other, quality * OTHER_FIELD_WEIGHT, 0.0),
            ),
        )
        return best, in_title, in_vocab & ~in_title
    n = len(docs)
    in_title = np.zeros(n, dtype=np.bool_)
    in_vocab = np.zeros(n, dtype=np.bool_)
    title_best = np.zeros(n)
    other_best = np.zeros(n)
    for post, quality in alts:
        t = member(post.title, docs)
        title_best = np.where(t & (~in_title | (quality > title_best)), quality, title_best)
        in_title |= t
        v = member(post.vocab, docs)
        better_v = v & (quality * VOCAB_FIELD_WEIGHT > other_best)
        in_vocab |= better_v
        other_best = np.where(better_v, quality * VOCAB_FIELD_WEIGHT, other_best)
        o = ~v & member(post.other, docs) & (quality * OTHER_FIELD_WEIGHT > other_best)
        other_best = np.where(o, quality * OTHER_FIELD_WEIGHT, other_best)
    return np.where(in_title, title_best, other_best), in_title, in_vocab & ~in_title


def _candidates(
    lists: Sequence[DocArray],
    allowed: Mask | None,
    cap: int,
    skip_cap: int,
    also: Sequence[DocArray] = (),
) -> DocArray:
    """The best documents by the prior holding all of `lists` (at most `cap`, see
    postings.first_common); when few do, those missing one of them (`skip_cap` each), then
    those holding any one. `also`: documents found otherwise, which count towards "few"."""
    found = [first_common(lists, allowed, cap), *also]
    if len(found[0]) < 40 and len(lists) > 1:
        for skip in range(len(lists)):
            rest = [p for j, p in enumerate(lists) if j != skip]
            found.append(first_common(rest, allowed, skip_cap))
        if len(union(found)) < 40:
            found.extend(first_common([p], allowed, ANY_TERM_CAP) for p in lists)
    return union(found)


def _hygiene(state: _Loaded, pool: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Final order of the best documents: a terminated code comes after every valid code
    that scores at least TERMINATED_RANK_SHARE of its score (so "colonoscopy with biopsy"
    lists the valid codes first, while a terminated code's own title still finds it)."""
    flags = state.doc_flags

    def key(ds: tuple[int, float]) -> tuple[float, int]:
        dead = flags[ds[0]] & FLAG_TERMINATED
        return (-(ds[1] * TERMINATED_RANK_SHARE if dead else ds[1]), ds[0])

    return sorted(pool, key=key)


def _children_first(hits: Sequence[SearchHit]) -> list[int]:
    """Positions of `hits` reordered so that no header (a non-billable code) comes before a
    billable code below it in the same list: the best-ranked such child moves up to just
    before the header ("B00.1" before "B00"). Otherwise the order is kept."""
    keys = [normalize_code(h.code) for h in hits]
    order = list(range(len(hits)))

    def below(child: int, header: int) -> bool:
        return (
            hits[child].billable
            and hits[child].system == hits[header].system
            and keys[child] != keys[header]
            and keys[child].startswith(keys[header])
        )

    for _ in range(len(hits) * len(hits)):  # each move lifts a billable code: it ends
        move = next(
            (
                (p, q)
                for p, i in enumerate(order)
                if not hits[i].billable
                for q in range(p + 1, len(order))
                if below(order[q], i)
            ),
            None,
        )
        if move is None:
            break
        p, q = move
        order.insert(p, order.pop(q))
    return order


def _context_factor(unasked: int) -> float:
    """Demotion for the qualifying contexts a title adds that the query did not mention."""
    factor = 1.0
    for bit, value in CONTEXT_FACTORS.items():
        if unasked & bit:
            factor *= value
    return factor


def _title_shares(
    flat: Sequence[tuple[float, Sequence[tuple[Postings, float]]]], docs: DocArray
) -> npt.NDArray[np.float64]:
    """IDF mass of the query terms in each of `docs`' titles (blocks: a concept's home)."""
    total = np.zeros(len(docs))
    for idf, alts in flat:
        best = np.zeros(len(docs))
        for post, quality in alts:
            best = np.maximum(best, np.where(member(post.title, docs), quality, 0.0))
        total += idf * best
    return total


def _head_position(query: str, n_tokens: int) -> int:
    """Index among the query's tokens of its head noun: the last word before the first
    preposition ("syringe with needle" -> 0), else the last word ("insulin pump" -> 1)."""
    count = 0
    for word in raw_words(query):
        if word in HEAD_PREPOSITIONS:
            if count:
                return min(count, n_tokens) - 1
            continue
        if word not in STOPWORDS:
            count += 1
    return n_tokens - 1


def _compound_at(state: _Loaded, tokens: Sequence[str]) -> int:
    """Position of the first pair of adjacent words that, written together, make one word
    the index or the synonyms know ("chicken pox" -> chickenpox, "wheel chair" ->
    wheelchair), else -1. Only words the user typed apart are joined, never split."""
    for i in range(len(tokens) - 1):
        first, second = tokens[i], tokens[i + 1]
        if not (first.isalpha() and second.isalpha()) or len(first) < 2 or len(second) < 2:
            continue
        word = stem(first + second)
        if len(word) >= 6 and (word in state.vocab_set or (word,) in state.synonyms):
            return i
    return -1


def _moved_head(head: int, start: int, end: int, replaced_by: int) -> int:
    """The head's slot after tokens `start:end` were replaced by `replaced_by` tokens."""
    if head < start:
        return head
    if head >= end:
        return head + replaced_by - (end - start)
    return start + replaced_by - 1


def _vocab_positions(vocab: Sequence[str], tokens: Iterable[str]) -> frozenset[int]:
    """Positions in the sorted vocabulary of `tokens` (those it holds)."""
    out: set[int] = set()
    for tok in tokens:
        i = bisect_left(vocab, tok)
        if i < len(vocab) and vocab[i] == tok:
            out.add(i)
    return frozenset(out)


def _synonym_note(phrase: str, synonym: _Synonym) -> str:
    """How --explain names a synonym that was applied."""
    target = (
        f"code {synonym.code}" if synonym.code else f'"{synonym.text or " ".join(synonym.tokens)}"'
    )
    kind = {"synonyms": "synonym", "FDA brand name": "brand name"}.get(synonym.source, "")
    label = kind or f"{synonym.source} term"
    origin = " (data/synonyms.tsv)" if synonym.source == "synonyms" else f" ({synonym.source})"
    return f'{label}: "{phrase}" -> {target}{origin}'


_SIDE_WORDS = frozenset({"right", "left", "bilateral"})
# Words that may interrupt a synonym phrase and stay words of their own: a side, or a body
# part or condition word with another form ("egd with gastric biopsy" holds "egd with
# biopsy", "gastric" still asked for).
_INTERRUPTING = _SIDE_WORDS | frozenset(WORD_FORMS)


def _side_inside(
    surface: Sequence[str],
    start: int,
    synonyms: dict[tuple[str, ...], tuple[_Synonym, ...]],
    unordered: dict[tuple[str, ...], tuple[_Synonym, ...]],
    longest: int,
    found: tuple[int, int, tuple[_Synonym, ...], int] | None,
) -> tuple[int, int, tuple[_Synonym, ...], int] | None:
    """The synonym phrase starting at `start` with one interrupting word inside it (a side,
    or a body part or condition word: `_INTERRUPTING`; the phrase in order, or a short one in
    any order: "repair right inguinal hernia"), when it is longer (without that word) than
    `found`, the phrase found as typed; else `found`."""
    best = found
    best_length = found[1] - found[0] if found is not None else 0
    for side in range(start + 1, min(start + longest, len(surface) - 1)):
        if surface[side] not in _INTERRUPTING:
            continue
        for end in range(len(surface), side + 1, -1):
            length = end - start - 1
            if length > longest or length <= best_length:
                continue
            words = (*surface[start:side], *surface[side + 1 : end])
            phrase = synonyms.get(words) or (
                unordered.get(tuple(sorted(words))) if length <= UNORDERED_MAX else None
            )
            if phrase:
                best, best_length = (start, end, phrase, side), length
                break
    return best


def _exact_slots(
    tokens: Iterable[str],
    quality: float,
    forms: Callable[[str, float], list[tuple[str, float]]],
) -> list[list[tuple[str, float]]]:
    """Term slots for synonym expansion words: exact tokens, no fuzzing, but with their other
    word forms (`forms`: "htn" -> hypertension also finds "Hypertensive heart ... disease")."""
    return [[(tok, quality), *forms(tok, quality * WORD_FORM_QUALITY)] for tok in tokens]


def _code_like(token: str) -> bool:
    """Could this single typed token be (the start of) a code or modifier?"""
    key = normalize_code(token)
    return (
        2 <= len(key) <= 8
        and key.isascii()
        and key.isalnum()
        and (any(ch.isdigit() for ch in key) or len(key) == 2)
    )


def _prefix_docs(
    posts: Sequence[Postings],
    in_title: bool,
    fixed: DocArray | None,
    n: int,
    exclude: Sequence[int],
) -> list[int]:
    """The `n` best documents (ascending internal number) holding one of `posts`' tokens in
    the title (`in_title`) or only elsewhere, within `fixed` when given, not in `exclude`."""
    if n <= 0:
        return []
    found: list[DocArray] = []
    # Without a filter, each token's first n + len(exclude) documents hold the n best.
    take = n + len(exclude)
    for post in posts:
        if fixed is not None:
            inside = member(post.title, fixed)
            found.append(fixed[inside] if in_title else fixed[member(post.every, fixed) & ~inside])
        elif in_title:
            found.append(post.title[:take])
        else:  # other and vocab are disjoint from title: their union is "only elsewhere"
            found.append(union([post.other[:take], post.vocab[:take]]))
    docs = union(found) if found else EMPTY
    if exclude and len(docs):
        docs = docs[~np.isin(docs, np.asarray(exclude, dtype=np.uint32))]
    picked: list[int] = docs[:n].tolist()
    return picked
