"""Instructional notes of the ICD-10-CM tabular XML, shaped into lines a coder reads.

The XML splits one instruction over several `<note>` elements: a lead-in without its verb
(`<useAdditionalCode><note>code to identify control using:</note><note>insulin (Z79.4)…`)
followed by its items. Shown one per line, that reads "Use additional code: code to identify
control using:; insulin (Z79.4)". We join each "code first / use additional / code also"
element into one sentence that starts with its verb phrase ("Use additional code to identify
control using: injectable non-insulin antidiabetic drugs (Z79.85), insulin (Z79.4), …").
Item lists (includes, excludes, inclusion terms, notes) stay one line per item.

The 7th-character definition (`sevenChrDef`) is read in document order because a `<note>`
inside it belongs to the extension before it (S72 B "initial encounter for open fracture
type I or II" / "initial encounter for open fracture NOS", shown as "initial encounter for
open fracture type I or II / open fracture NOS").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

# Note kinds whose element is one instruction, and the verb phrase the XML leaves out.
SENTENCE_PHRASES = {
    "code_first": "Code first",
    "use_additional_code": "Use additional",  # the XML text starts with "code …"
    "code_also": "Code also",
}
EXCEPT_AS_NOTED = "except as noted below"
_PREPOSITIONS = frozenset({"for", "with", "of", "to", "in", "by"})


def note_text(elem: ET.Element | None) -> str:
    """Whitespace-normalised text of an element ('' when missing)."""
    if elem is None or elem.text is None:
        return ""
    return " ".join(elem.text.split())


def sentence(kind: str, parts: list[str]) -> str:
    """One instruction element as a sentence: verb phrase, lead-in, then its items.

    A lead-in ending in ":" is followed by its items separated by commas; a part that
    already starts with a comma (", if applicable") attaches without a space.
    """
    text = SENTENCE_PHRASES[kind]
    for index, part in enumerate(parts):
        if index == 0 or part.startswith(","):
            separator = "" if part.startswith(",") else " "
        elif text.endswith(":"):
            separator = " "
        else:
            separator = ", "
        text += separator + part
    return text.rstrip(" ,;")


def element_lines(kind: str, elem: ET.Element) -> list[str]:
    """The display lines of one note element of `kind`."""
    parts = [line for line in (note_text(note) for note in elem.iter("note")) if line]
    if not parts:
        return []
    if kind in SENTENCE_PHRASES:
        return [sentence(kind, parts)]
    return parts


def seven_table(elem: ET.Element) -> dict[str, str]:
    """A `sevenChrDef` as {character: meaning}, with in-definition notes attached.

    The note repeats the meaning's opening words ("initial encounter for open fracture
    NOS" after "initial encounter for open fracture type I or II"), so only the part after
    the shared words is added: "… type I or II / open fracture NOS".
    """
    table: dict[str, str] = {}
    last = ""
    for child in elem:
        if child.tag == "extension":
            last = child.get("char", "")
            table[last] = note_text(child)
        elif child.tag == "note" and last:
            extra = note_text(child)
            if extra:
                table[last] = f"{table[last]} / {_after_shared_words(table[last], extra)}"
    return table


def _after_shared_words(base: str, extra: str) -> str:
    """`extra` without the leading words it shares with `base`, case-insensitively."""
    base_words, extra_words = base.split(), extra.split()
    shared = 0
    while (
        shared < min(len(base_words), len(extra_words)) - 1
        and base_words[shared].lower() == extra_words[shared].lower()
    ):
        shared += 1
    # Back off to a preposition so the rest reads as a phrase ("open fracture NOS", not
    # a bare "NOS").
    while shared and base_words[shared - 1].lower() not in _PREPOSITIONS:
        shared -= 1
    return " ".join(extra_words[shared:])


def resolve_except_note(seven_note: list[str], notes: list[str]) -> list[str]:
    """Complete "… except as noted below" with the notes that state the exception.

    S06's 7th-character note ends "except as noted below" and its `notes` say which 7th
    characters do not apply; once inherited onto a code, "below" points nowhere, so the
    exception is quoted in the same line.
    """
    exceptions = [line for line in notes if "7th character" in line.lower()]
    out: list[str] = []
    for line in seven_note:
        if line.rstrip(". ").endswith(EXCEPT_AS_NOTED) and exceptions:
            head = line.rstrip(". ")[: -len(EXCEPT_AS_NOTED)].rstrip(", ")
            line = f"{head}, except: " + " ".join(exceptions)
        out.append(line)
    return out
