"""ICD-10-CM Official Guidelines for Coding and Reporting FY2026, split by their numbering.

Source: the CDC PDF `data/icd10cm-guidelines/ICD-10-CM-October-2025-Guidelines.pdf`
(provenance and sha256 in data/README.md). The text is extracted at build time with pypdf
and cached in `data/build/` under the PDF's sha256, so only the first build on a machine
pays for the extraction (~10-20 s).

Splitting: the guidelines' own table of contents (pages 2-6) lists every numbered heading
down to four levels (Section I > C. > 1. > d.). The body is cut at those headings, in
order, so section `I.C.1.d` is exactly the text from its heading to the next listed one;
deeper items (`1)`, `(a)`) stay inside. Page headers ("ICD-10-CM Official Guidelines …
Page 23 of 121") are removed; everything else is quoted as extracted, never rewritten.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from bot.codes.sources import DATA_DIR

RELEASE = "FY2026 (October 1, 2025)"
PDF_PATH = DATA_DIR / "icd10cm-guidelines" / "ICD-10-CM-October-2025-Guidelines.pdf"
PDF_SHA256 = "992310dd8323de12026e3db40b7e60f94ea997e4808a56e0ea584ee3ea5cc7ea"
CACHE_DIR = DATA_DIR / "build"
PAGE_BREAK = "\f"

# "....... 23" at the end of a TOC line (some lines have one or two dots only)
_LEADER = re.compile(r"\s*\.+\s*(\d{1,3})\s*$")
_BARE_PAGE = re.compile(r"\s+(\d{1,3})\s*$")
_SECTION = re.compile(r"^Section\s+(I{1,3}|IV)\.\s*(.*)$")
_CAPITAL = re.compile(r"^([A-Z])\.\s+(.*)$")
_NUMBER = re.compile(r"^(\d{1,2})\.\s+(.*)$")
_LOWER = re.compile(r"^([a-z])\.\s+(.*)$")
_PAGE_HEADER = re.compile(
    r"ICD-10-CM Official Guidelines for Coding and Reporting\s*\n\s*FY 2026\s*\n\s*"
    r"Page \d+ of \d+\s*\n"
)
_SPACES = re.compile(r"[ \t]+")
_CHAPTER = re.compile(r"^I\.C\.(\d{1,2})(?:\.|$)")


class MissingGuidelines(FileNotFoundError):
    """The guidelines PDF is not where the build expects it (the message names it)."""


@dataclass(frozen=True, slots=True)
class GuidelineSection:
    """One numbered section: `section` "I.C.1.d", its heading, page and its own text."""

    section: str
    heading: str
    page: int
    body: str

    @property
    def chapter(self) -> int | None:
        """The ICD-10-CM chapter of a chapter-specific guideline (I.C.4 -> 4)."""
        match = _CHAPTER.match(self.section)
        return int(match.group(1)) if match else None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract_text(path: Path = PDF_PATH, cache_dir: Path = CACHE_DIR) -> str:
    """The PDF's text, pages separated by form feeds (cached by the PDF's sha256)."""
    if not path.is_file():
        raise MissingGuidelines(
            f"Official Guidelines PDF missing: {path} (CDC ICD-10-CM-October-2025-Guidelines.pdf)"
        )
    digest = _sha256(path)
    if path == PDF_PATH and digest != PDF_SHA256:
        raise ValueError(f"{path}: sha256 {digest} is not the pinned {PDF_SHA256}")
    cached = cache_dir / f"guidelines-{digest[:16]}.txt"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    from pypdf import PdfReader

    reader = PdfReader(path)
    text = PAGE_BREAK.join(page.extract_text() or "" for page in reader.pages)
    cache_dir.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".tmp")
    partial.write_text(text, encoding="utf-8")
    partial.replace(cached)
    return text


@dataclass(slots=True)
class _Entry:
    section: str
    label: str
    heading: str
    page: int


def _toc(lines: list[str]) -> tuple[list[_Entry], int]:
    """The table of contents entries and the index of the first body line after it."""
    entries: list[_Entry] = []
    path: list[str] = []
    pending = ""
    end = 0
    for index, raw in enumerate(lines):
        line = _SPACES.sub(" ", raw).strip()
        if not line:
            continue
        if pending:
            # a wrapped heading; a line holding only its page number gets its leader back
            line = f"{pending} ... {line}" if line.isdigit() else f"{pending} {line}"
            pending = ""
        leader = _LEADER.search(line)
        if leader is None and _BARE_PAGE.search(line) and _starts_entry(lines, index + 1):
            leader = _BARE_PAGE.search(line)  # "… the puerperium 67": no leader dots at all
        if leader is None:
            if len(entries) > 100 and _SECTION.match(line):
                # The body starts where a Section heading appears without its page number,
                # once the contents are done (they list far more than 100 entries).
                end = index
                break
            if (
                _SECTION.match(line)
                or _CAPITAL.match(line)
                or _NUMBER.match(line)
                or _LOWER.match(line)
            ):
                pending = line  # a heading wrapped onto the next line
            continue
        text, page = line[: leader.start()].strip(), int(leader.group(1))
        level, label, heading = _classify(text)
        if level < 0:
            continue
        path = [label] if level == 0 else [*path[:level], label]
        entries.append(_Entry(".".join(path), label, heading, page))
    return entries, end


def _starts_entry(lines: list[str], index: int) -> bool:
    """True when the next non-empty line starts a new contents entry."""
    for raw in lines[index : index + 3]:
        line = raw.strip()
        if line:
            return _classify(line)[0] >= 0
    return False


def _classify(text: str) -> tuple[int, str, str]:
    for level, pattern in enumerate((_SECTION, _CAPITAL, _NUMBER, _LOWER)):
        match = pattern.match(text)
        if match:
            return level, match.group(1), match.group(2).strip()
    return -1, "", ""


def _normal(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def split_sections(text: str) -> list[GuidelineSection]:
    """Cut the extracted text into the numbered sections of its table of contents."""
    text = _PAGE_HEADER.sub("\n", text.replace(PAGE_BREAK, "\n"))
    lines = text.split("\n")
    entries, body_start = _toc(lines)
    if not entries or not body_start:
        raise ValueError("guidelines: no table of contents found in the PDF text")
    body = lines[body_start:]
    # Where each entry's heading starts in the body, searched in order.
    starts: list[tuple[int, _Entry]] = []
    cursor = 0
    for entry in entries:
        label = f"Section {entry.label}." if "." not in entry.section else f"{entry.label}."
        wanted = _normal(label + entry.heading)[:40]
        for index in range(cursor, len(body)):
            joined = _normal(" ".join(body[index : index + 3]))
            if joined.startswith(wanted[: max(8, min(len(wanted), 30))]):
                starts.append((index, entry))
                cursor = index + 1
                break
    sections: list[GuidelineSection] = []
    for number, (index, entry) in enumerate(starts):
        stop = starts[number + 1][0] if number + 1 < len(starts) else len(body)
        passage = "\n".join(_SPACES.sub(" ", line).rstrip() for line in body[index:stop])
        passage = re.sub(r"\n\s*\n+", "\n\n", passage).strip()
        sections.append(GuidelineSection(entry.section, entry.heading, entry.page, passage))
    return sections


def read(path: Path = PDF_PATH) -> list[GuidelineSection]:
    """Every numbered section of the guidelines PDF (MissingGuidelines when it is absent)."""
    return split_sections(extract_text(path))
