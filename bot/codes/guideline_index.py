"""Search and read the Official Guidelines sections stored in the code database.

Word search runs on SQLite FTS5 (porter stemming) over headings and passages, then ranks
the candidates the way a coder reads them: query words in the heading first, then how often
the section uses them (I.C.1.d, the sepsis guideline, mentions sepsis far more often than
the obstetric and newborn sections that also have it in their headings). The code search
engine (bot/codes/search.py) is built for code titles and their vocabulary, so the
guidelines have this small index of their own. Quoted text is the extracted text as is.
"""

from __future__ import annotations

import math
import re
import sqlite3
import threading
from dataclasses import dataclass

from bot.model import CodeCard

_WORD = re.compile(r"[a-z0-9]+")
_SECTION_TYPED = re.compile(r"^(?:section\s+)?((?:I{1,3}|IV)(?:\.[A-Za-z0-9]{1,2}){0,3})\.?$", re.I)
MAX_CANDIDATES = 40
# ICD-10-CM categories named in a passage ("E11", "E08 – E13" names E08 and E13)
_CATEGORY = re.compile(r"\b([A-Z][0-9][0-9A-Z])\b")
# (number, heading, heading word stems, categories its text names)
_Subsection = tuple[str, str, frozenset[str], frozenset[str]]
_STOP = frozenset({"of", "the", "and", "in", "a", "an", "for", "to", "with", "or", "on", "by"})


@dataclass(frozen=True, slots=True)
class Section:
    """One guideline section as stored."""

    section: str
    heading: str
    page: int
    body: str


def _words(text: str) -> list[str]:
    return [w for w in _WORD.findall(text.lower()) if w not in _STOP]


def _stem(word: str) -> str:
    for suffix in ("ing", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def normalize_section(typed: str) -> str:
    """`i.c.1.d`, `Section I.C.1.d.`, `IC1d`? -> `I.C.1.d` ('' when not a section number)."""
    match = _SECTION_TYPED.match(typed.strip())
    if not match:
        return ""
    parts = match.group(1).split(".")
    out = [parts[0].upper()]
    for depth, part in enumerate(parts[1:], start=1):
        out.append(part.upper() if depth == 1 else part.lower())
    return ".".join(out)


class GuidelineIndex:
    """Read-only access to `guideline_sections` / `guideline_fts` (thread-safe)."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        """Share an open connection and its lock (a KnowledgeBase's)."""
        self._conn = conn
        self._lock = lock
        self._chapter_cache: dict[tuple[int, str], tuple[str, str] | None] = {}
        self._chapters: dict[int, tuple[tuple[str, str] | None, list[_Subsection]]] = {}
        with lock:
            self.available = (
                conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'guideline_fts'").fetchone()
                is not None
            )

    def section(self, number: str) -> Section | None:
        """One section by its number (`I.C.1.d`)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT section, heading, page, body FROM guideline_sections WHERE section = ?",
                (number,),
            ).fetchone()
        return Section(*row) if row else None

    def children(self, number: str) -> list[tuple[str, str]]:
        """(number, heading) of the sections directly under `number`."""
        depth = number.count(".") + 1
        with self._lock:
            rows = self._conn.execute(
                "SELECT section, heading FROM guideline_sections WHERE section LIKE ? ORDER BY id",
                (number + ".%",),
            ).fetchall()
        return [(s, h) for s, h in rows if s.count(".") == depth]

    def search(self, query: str, limit: int = 3) -> list[Section]:
        """The sections that best match the words, best first."""
        words = _words(query)[:12]
        if not words or not self.available:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        with self._lock:
            rows = self._conn.execute(
                "SELECT s.section, s.heading, s.page, s.body FROM guideline_fts f"
                " JOIN guideline_sections s ON s.id = f.rowid WHERE guideline_fts MATCH ?"
                " ORDER BY bm25(guideline_fts, 8.0, 1.0) LIMIT ?",
                (match, MAX_CANDIDATES),
            ).fetchall()
        stems = [_stem(w) for w in words]
        scored = []
        for order, row in enumerate(rows):
            section = Section(*row)
            heading = {_stem(w) for w in _words(section.heading)}
            body = [_stem(w) for w in _words(section.body)]
            in_heading = sum(1 for s in stems if s in heading) / len(stems)
            covered = sum(1 for s in stems if s in body) / len(stems)
            uses = sum(body.count(s) for s in stems)
            score = 3 * in_heading + 2 * covered + math.log1p(uses) - 0.01 * order
            scored.append((score, section))
        scored.sort(key=lambda pair: -pair[0])
        return [section for _, section in scored[:limit]]

    def passage(self, section: Section, query: str, limit: int = 700) -> str:
        """The paragraph of a section that uses the query words most, quoted (cut at `limit`)."""
        stems = {_stem(w) for w in _words(query)}
        paragraphs = [p for p in section.body.split("\n\n") if p.strip()]
        if not paragraphs:
            return ""
        body_paragraphs = paragraphs[1:] if len(paragraphs) > 1 else paragraphs
        best = max(
            body_paragraphs,
            key=lambda p: sum(1 for w in _words(p) if _stem(w) in stems),
        )
        text = " ".join(best.split())
        return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + " …"

    def for_card(self, card: CodeCard) -> tuple[str, str] | None:
        """The chapter-specific guideline of an ICD-10-CM card: (number, heading).

        The section of its chapter (I.C.n.x) whose text names the code's category or whose
        heading shares words with the code's titles; the chapter's own section otherwise.
        """
        if not self.available or not card.parents:
            return None
        chapter_code = card.parents[0].code
        if not chapter_code.isdigit():
            return None
        chapter = int(chapter_code)
        category = next(
            (p.code for p in card.parents if len(p.code) == 3 and p.code[0].isalpha()),
            card.code[:3],
        )
        cache_key = (chapter, category)
        if cache_key in self._chapter_cache:
            return self._chapter_cache[cache_key]
        titles = {_stem(w) for p in card.parents[1:] for w in _words(p.title)}
        titles |= {_stem(w) for w in _words(card.title)}
        found: tuple[str, str] | None = None
        best = 0.0
        chapter_section, subsections = self._chapter_sections(chapter)
        for section, heading, heading_stems, categories in subsections:
            score = 2.0 * (category in categories) + len(heading_stems & titles)
            if score > best:
                best, found = score, (section, heading)
        found = found or chapter_section
        if len(self._chapter_cache) > 10_000:
            self._chapter_cache.clear()
        self._chapter_cache[cache_key] = found
        return found

    def _chapter_sections(self, chapter: int) -> tuple[tuple[str, str] | None, list[_Subsection]]:
        """A chapter's own section and its subsections, read and indexed once per chapter."""
        cached = self._chapters.get(chapter)
        if cached is not None:
            return cached
        prefix = f"I.C.{chapter}"
        with self._lock:
            rows = self._conn.execute(
                "SELECT section, heading, body FROM guideline_sections"
                " WHERE section = ? OR section LIKE ? ORDER BY id",
                (prefix, prefix + ".%"),
            ).fetchall()
        own = next(((s, h) for s, h, _ in rows if s == prefix), None)
        subsections = [
            (
                section,
                heading,
                frozenset(_stem(w) for w in _words(heading)),
                frozenset(_CATEGORY.findall(body)),
            )
            for section, heading, body in rows
            if section.count(".") == 3
        ]
        self._chapters[chapter] = (own, subsections)
        return own, subsections
