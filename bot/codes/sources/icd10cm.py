"""ICD-10-CM FY2026 from the CDC tabular XML shipped inside `simple-icd-10-cm` 1.5.0.

We parse the XML ourselves with ElementTree (about a second) instead of using the package's
API, which is far slower and would be a runtime dependency. The tabular list has chapters,
blocks ("sections"), and nested `diag` elements (categories, subcategories, codes). Codes
that need a 7th character are not listed in the XML: a `sevenChrDef` on an ancestor says
which 7th characters apply, and we generate every valid 7-character code from the leaves
below it (padding with the placeholder X to six characters first: S00.00 + A -> S00.00XA).
"""

from __future__ import annotations

import importlib.util
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from bot.codes.normalize import icd10cm_display, normalize_code
from bot.codes.sources import CodeRow, SourceData, make_details
from bot.codes.sources.icd10cm_notes import (
    element_lines,
    note_text,
    resolve_except_note,
    seven_table,
)

SYSTEM = "icd10cm"
LABEL = "ICD-10-CM"
PACKAGE = "simple_icd_10_cm"
PACKAGE_VERSION = "1.5.0"
XML_NAME = "icd10c-tabular-April-1-2026.xml"
RELEASE = "FY2026 (April 1, 2026 update)"

# XML note element -> note type used on cards (see bot.model.CodeCard.notes).
_NOTE_TAGS = {
    "inclusionTerm": "inclusion_terms",
    "includes": "includes",
    "excludes1": "excludes1",
    "excludes2": "excludes2",
    "codeFirst": "code_first",
    "useAdditionalCode": "use_additional_code",
    "codeAlso": "code_also",
    "notes": "notes",
    "sevenChrNote": "seven_chr_note",
}
# 7th characters that a note (not the sevenChrDef) rules out. S06's notes say: "7th
# characters D and S do not apply to codes in category S06 with 6th character 7 - death due
# to brain injury prior to regaining consciousness, or 8 - death due to other cause prior to
# regaining consciousness." (category, 6th character) -> excluded 7th characters.
_SEVENTH_EXCEPTIONS = {("S06", "7"): "DS", ("S06", "8"): "DS"}
_RANGE_SUFFIX = re.compile(r"\s*\([A-Z0-9.\-]+\)\s*$")


def xml_path() -> Path:
    """Locate the tabular XML inside the installed `simple-icd-10-cm` package.

    We use `find_spec` rather than `importlib.resources.files`, because importing the
    package runs its own multi-second loader of this very file.
    """
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"package {PACKAGE}=={PACKAGE_VERSION} is not installed (pip install -e .)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / XML_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; is {PACKAGE}=={PACKAGE_VERSION} installed?")
    return path


_text = note_text


def _notes_of(elem: ET.Element) -> tuple[dict[str, list[str]], dict[str, str] | None]:
    """The notes directly under `elem`, and its own 7th-character definition if any.

    "Code first / use additional / code also" elements become one sentence each
    (`icd10cm_notes.element_lines`); a 7th-character note ending "except as noted below"
    quotes the exception from the element's own notes.
    """
    notes: dict[str, list[str]] = {}
    seven: dict[str, str] | None = None
    for child in elem:
        tag = child.tag
        if tag == "sevenChrDef":
            seven = seven_table(child)
            continue
        kind = _NOTE_TAGS.get(tag)
        if kind is None:
            continue
        lines = element_lines(kind, child)
        if lines:
            notes.setdefault(kind, []).extend(lines)
    if "seven_chr_note" in notes:
        notes["seven_chr_note"] = resolve_except_note(
            notes["seven_chr_note"], notes.get("notes", [])
        )
    return notes, seven


def _seven_lines(seven: dict[str, str]) -> list[str]:
    """A 7th-character definition as display lines ("A: initial encounter ...")."""
    return [f"{char}: {meaning}" for char, meaning in seven.items()]


def _merged(first: dict[str, list[str]], second: dict[str, list[str]]) -> dict[str, list[str]]:
    """Two note dicts as one, `first`'s lines before `second`'s within each kind."""
    out = {kind: list(lines) for kind, lines in first.items()}
    for kind, lines in second.items():
        out.setdefault(kind, []).extend(lines)
    return out


class _Walker:
    """Collects rows while walking the tabular tree in document order."""

    def __init__(self) -> None:
        self.rows: list[CodeRow] = []
        self.billable = 0
        self.extensions = 0
        self.excluded = 0

    def diag(
        self,
        elem: ET.Element,
        parent: str,
        seven: dict[str, str] | None,
        seven_note: list[str] | None,
        block_notes: dict[str, list[str]] | None = None,
    ) -> None:
        """Add one `diag` element, its 7th-character codes, and its sub-diagnoses.

        `block_notes` are the notes of a one-category block (T07), which has no row of its
        own: they apply to the category and everything below it, so they join its notes.
        """
        code = _text(elem.find("name"))
        key = normalize_code(code)
        title = _text(elem.find("desc"))
        notes, own_seven = _notes_of(elem)
        if block_notes:
            notes = _merged(block_notes, notes)
        if own_seven is not None:
            # The nearest definition wins: a subcategory may narrow its category's list.
            seven = own_seven
            seven_note = notes.get("seven_chr_note") or seven_note
        children = elem.findall("diag")
        needs_seventh = not children and seven is not None
        if own_seven is not None:
            notes["seven_chr_def"] = _seven_lines(own_seven)
        elif needs_seventh and seven_note:
            # A code that needs a 7th character says so; its generated children (listed on
            # its card) carry the meanings, so the full definition is not repeated here.
            notes["seven_chr_note"] = list(seven_note)
        billable = not children and not needs_seventh
        kind = "category" if len(key) == 3 else ("code" if billable else "subcategory")
        self.billable += billable
        self.rows.append(
            CodeRow(
                system=SYSTEM,
                code=code,
                key=key,
                kind=kind,
                title=title,
                billable=billable,
                parent=parent,
                search_terms="\n".join(notes.get("inclusion_terms", ())),
                details=make_details(notes=notes),
            )
        )
        if needs_seventh and seven is not None:
            self._extend(code, key, title, seven, seven_note)
        for child in children:
            self.diag(child, code, seven, seven_note)

    def _extend(
        self,
        code: str,
        key: str,
        title: str,
        seven: dict[str, str],
        seven_note: list[str] | None,
    ) -> None:
        """Generate the valid 7-character codes of a leaf that requires a 7th character."""
        padded = key.ljust(6, "X")
        excluded = _SEVENTH_EXCEPTIONS.get((padded[:3], padded[5]), "")
        for char, meaning in seven.items():
            if char in excluded:
                self.excluded += 1
                continue
            ext_key = padded + char
            notes: dict[str, list[str]] = {}
            if seven_note:
                notes["seven_chr_note"] = list(seven_note)
            # The card shows the whole 7th-character table of the nearest definition above
            # (bot.codes.catalog), marking this character; storing it per code would repeat
            # it on ~50,000 rows.
            details = make_details(notes=notes)
            details["seventh"] = char
            self.rows.append(
                CodeRow(
                    system=SYSTEM,
                    code=icd10cm_display(ext_key),
                    key=ext_key,
                    kind="code",
                    title=f"{title}, {meaning}",
                    billable=True,
                    parent=code,
                    details=details,
                )
            )
            self.billable += 1
            self.extensions += 1


def load(path: Path | None = None) -> SourceData:
    """Read the ICD-10-CM tabular XML into rows (chapters, blocks, codes, 7th-char codes)."""
    path = path or xml_path()
    root = ET.parse(path).getroot()
    walker = _Walker()
    rows = walker.rows
    chapters = blocks = 0
    for chapter in root.iter("chapter"):
        number = _text(chapter.find("name"))
        chapter_code = number
        notes, _ = _notes_of(chapter)
        rows.append(
            CodeRow(
                system=SYSTEM,
                code=chapter_code,
                key=f"CHAPTER{number}",
                kind="chapter",
                title=_text(chapter.find("desc")),
                details=make_details(notes=notes),
            )
        )
        chapters += 1
        for section in chapter.findall("section"):
            block = section.get("id", "")
            diags = section.findall("diag")
            notes, _ = _notes_of(section)
            if "-" not in block:
                # A one-category block ("B10") has the same code as its only category and
                # repeats its title: skip it so (system, code) stays unique; the category
                # hangs straight under the chapter and takes the block's notes (T07's
                # Excludes1 burns and frostbite).
                for diag in diags:
                    walker.diag(diag, chapter_code, None, None, notes)
                continue
            # "Intestinal infectious diseases (A00-A09)": the range is the block's code.
            title = _RANGE_SUFFIX.sub("", _text(section.find("desc")))
            rows.append(
                CodeRow(
                    system=SYSTEM,
                    code=block,
                    key=block,
                    kind="block",
                    title=title,
                    parent=chapter_code,
                    details=make_details(notes=notes),
                )
            )
            blocks += 1
            for diag in diags:
                walker.diag(diag, block, None, None)
    counts = {
        "codes": len(rows) - chapters - blocks,
        "billable": walker.billable,
        "seventh_character_codes": walker.extensions,
        "chapters": chapters,
        "blocks": blocks,
    }
    return SourceData(
        system=SYSTEM,
        label=LABEL,
        release=RELEASE,
        source=f"CDC ICD-10-CM tabular XML {path.name} (PyPI simple-icd-10-cm=={PACKAGE_VERSION})",
        rows=rows,
        counts=counts,
    )
