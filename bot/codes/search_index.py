"""Build the word-search index inside the code database.

The builder (`bot.codes.build`) calls `build_search_index(conn, progress)` once the `codes`
table is filled. Everything the query engine (`bot.codes.search`) needs is written into the
same SQLite file, so opening the engine reads a few small blobs and nothing else:

* `search_postings(token, df, title_ids, other_ids)`: one row per distinct normalised token.
  `title_ids` lists the documents whose title holds the token, `other_ids` the documents that
  have it only in the short title or inclusion terms. Both are packed `array('I')` bytes of
  *internal* document numbers in ascending order.
* `search_meta(key, value)`: the document table as packed arrays (`doc_ids`, `doc_tlen`,
  `doc_flags`), the vocabulary and the synonyms text.

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
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

INDEX_VERSION = "2"

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

SYNONYMS_PATH = Path(__file__).resolve().parents[2] / "data" / "synonyms.tsv"

_SPLIT = re.compile(r"[^0-9a-z]+")
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


def title_length(title: str, short_title: str, kind: str) -> int:
    """How many distinct words a title adds beyond what a query may ask for.

    Parenthesised nonessential words do not count. A modifier's long title is a definition
    with instructions ("Technical component; under certain circumstances ..."), so its short
    title measures it better. (Other short titles are abbreviations: not comparable.)
    """
    n = len(set(tokenize(_PARENS.sub(" ", title) if "(" in title else title)))
    if short_title and kind == "modifier":
        n = min(n, len(set(tokenize(short_title))))
    return max(n, 1)


def depth_of(system: str, kind: str, key: str) -> int:
    """Levels below the 3-character category (ICD-10-CM only; other sets are flat)."""
    if system == "icd10cm" and kind in ("category", "subcategory", "code"):
        return max(0, len(key) - 3)
    return 0


def _prior_key(
    kind: str, billable: bool, status: str, tlen: int, system: str, order: int
) -> tuple[int, int, int, int, int, int]:
    """Static rank of a document: smaller sorts first when query relevance ties."""
    return (
        1 if kind in GROUP_KINDS else 0,
        1 if status == "terminated" else 0,
        min(tlen, 60),
        0 if billable else 1,
        SYSTEM_INDEX.get(system, 3),
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
) -> None:
    """Write the search tables for the filled `codes` table into the same database.

    Runs inside the caller's connection; the caller commits. Rebuilding drops the old tables.
    """
    started = time.perf_counter()
    conn.execute("DROP TABLE IF EXISTS search_postings")
    conn.execute("DROP TABLE IF EXISTS search_meta")
    conn.execute(
        "CREATE TABLE search_postings (token TEXT PRIMARY KEY, df INTEGER NOT NULL,"
        " title_ids BLOB NOT NULL, other_ids BLOB NOT NULL) WITHOUT ROWID"
    )
    conn.execute("CREATE TABLE search_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

    rows = conn.execute(
        "SELECT id, system, kind, key, title, short_title, billable, status, sort_order,"
        " search_terms FROM codes"
    ).fetchall()

    # Tokenise once; remember each document's prior so internal numbers follow it.
    docs: list[tuple[tuple[int, ...], int, int, int, int, list[str], set[str]]] = []
    for cid, system, kind, key, title, short, billable, status, order, terms in rows:
        title_tokens = tokenize(title)
        other: set[str] = set(tokenize(short)) if short else set()
        # Most titles have no parentheses: their length is known without a second pass.
        tlen = (
            title_length(title, short, kind)
            if "(" in title or kind == "modifier"
            else max(len(set(title_tokens)), 1)
        )
        if terms:
            other.update(tokenize(terms))
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
        prior = _prior_key(kind, bool(billable), status, tlen + depth, system, order)
        docs.append((prior, cid, min(tlen, 255), depth, flags, title_tokens, other))
    docs.sort(key=lambda d: d[0])
    progress(f"  search index: tokenised {len(docs):,} documents")

    title_post: dict[str, array[int]] = {}
    other_post: dict[str, array[int]] = {}
    doc_ids = array("I")
    doc_tlen = array("B")
    doc_flags = array("B")
    doc_depth = array("B")
    for n, (_key, cid, tlen, depth, flags, title_tokens, other) in enumerate(docs):
        doc_ids.append(cid)
        doc_tlen.append(tlen)
        doc_depth.append(min(depth, 255))
        doc_flags.append(flags)
        tset = set(title_tokens)
        for tok in tset:
            title_post.setdefault(tok, array("I")).append(n)
        for tok in other - tset:
            other_post.setdefault(tok, array("I")).append(n)

    vocab = sorted(set(title_post) | set(other_post))
    empty = b""
    conn.executemany(
        "INSERT INTO search_postings (token, df, title_ids, other_ids) VALUES (?, ?, ?, ?)",
        _posting_rows(vocab, title_post, other_post, empty),
    )
    synonyms = load_synonyms_text(synonyms_path)
    meta: list[tuple[str, bytes | str]] = [
        ("version", INDEX_VERSION),
        ("doc_count", str(len(docs))),
        ("doc_ids", doc_ids.tobytes()),
        ("doc_tlen", doc_tlen.tobytes()),
        ("doc_flags", doc_flags.tobytes()),
        ("doc_depth", doc_depth.tobytes()),
        ("vocab", "\n".join(vocab)),
        ("synonyms", synonyms),
    ]
    conn.executemany("INSERT INTO search_meta (key, value) VALUES (?, ?)", meta)
    progress(
        f"  search index: {len(vocab):,} tokens, {len(docs):,} documents"
        f" in {time.perf_counter() - started:.1f}s"
    )


def _posting_rows(
    vocab: Iterable[str],
    title_post: dict[str, array[int]],
    other_post: dict[str, array[int]],
    empty: bytes,
) -> Iterable[tuple[str, int, bytes, bytes]]:
    """Rows for `search_postings`, one per token."""
    for tok in vocab:
        t = title_post.get(tok)
        o = other_post.get(tok)
        df = (len(t) if t is not None else 0) + (len(o) if o is not None else 0)
        yield (
            tok,
            df,
            t.tobytes() if t is not None else empty,
            o.tobytes() if o is not None else empty,
        )
