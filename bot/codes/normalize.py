"""Code normalisation and shape rules, shared by the command parser and the catalog.

Users type codes any way: `e119`, `E11.9`, ` e11.9 `, `-lt`. The lookup key is upper case
with dots, spaces and a leading dash removed. Shapes decide whether a token is *probably* a
code (it has a digit and fits a code-set pattern) or only *possibly* one (all letters, such
as the PCS-shaped word `BLADDER` or the modifier-shaped `MS`): the service looks possible
codes up and falls back to a word search when they are not codes.
"""

from __future__ import annotations

import re
from enum import StrEnum

MAX_CODE_LENGTH = 8  # S72.001A with its dot

_ICD10CM = re.compile(r"^[A-Z][0-9][0-9A-Z](?:[0-9A-Z]{1,4})?$")
_ICD10PCS = re.compile(r"^[0-9BCDFGHX][0-9A-HJ-NP-Z]{6}$")
_ICD10PCS_TABLE = re.compile(r"^[0-9BCDFGHX][0-9A-HJ-NP-Z]{2}$")  # 0DT: section+system+op
# A row prefix of a PCS table (0DTJ, 0DTJ4): the table's characters and one or two axes.
_ICD10PCS_ROW = re.compile(r"^[0-9BCDFGHX][0-9A-HJ-NP-Z]{3,4}$")
# A PCS body system (0D, BW): section and body system, no digit needed (GZ, XW).
_ICD10PCS_BODY = re.compile(r"^[0-9BCDFGHX][0-9A-HJ-NP-Z]$")
# An ICD-10-CM block is the range of its categories (E08-E13, I10-I1A).
_ICD10CM_BLOCK = re.compile(r"^[A-Z][0-9][0-9A-Z]-[A-Z][0-9][0-9A-Z]$")
_HCPCS = re.compile(r"^[A-V][0-9]{4}$")
_CPT = re.compile(r"^(?:[0-9]{5}|[0-9]{4}[FTUM])$")
_MODIFIER = re.compile(r"^[A-Z0-9]{2}$")
_STRIP = re.compile(r"[.\s]")
# A PCS code one character short or long (0DTJ4Z, 0SRC0J9Z), in the PCS alphabet (no I/O).
_NEAR_PCS = re.compile(r"^[0-9BCDFGHX][0-9A-HJ-NP-Z]{5}(?:[0-9A-HJ-NP-Z]{2})?$")


class CodeShape(StrEnum):
    """How sure we are that a token is a code."""

    CODE = "code"  # has a digit and fits a code-set pattern
    MAYBE = "maybe"  # fits a pattern but is all letters (could be a word)
    MODIFIER = "modifier"  # a two-character token (HCPCS/CPT modifier shape)
    WORD = "word"  # not a code


def normalize_code(raw: str) -> str:
    """Return the lookup key of a typed code: upper case, no dots, spaces or leading dash."""
    key = _STRIP.sub("", raw).upper()
    return key.lstrip("-")


def shape_of(token: str) -> CodeShape:
    """Classify one whitespace-free token typed by a user."""
    if len(token) > MAX_CODE_LENGTH + 1:
        return CodeShape.WORD
    if is_block_shaped(token.upper()):
        return CodeShape.CODE  # the dash would make it a word below
    if token.startswith("-") and len(token) == 3:
        return CodeShape.MODIFIER if _MODIFIER.match(token[1:].upper()) else CodeShape.WORD
    if (
        token.count(".") > 1
        or token.startswith(".")
        or not all(ch.isascii() and (ch.isalnum() or ch == ".") for ch in token)
    ):
        return CodeShape.WORD
    key = normalize_code(token)
    if "." in token and not _ICD10CM.match(key):
        return CodeShape.WORD
    if _MODIFIER.match(key):
        return CodeShape.MODIFIER
    if not any(
        _pattern.match(key)
        for _pattern in (_ICD10CM, _ICD10PCS, _ICD10PCS_TABLE, _ICD10PCS_ROW, _HCPCS, _CPT)
    ):
        return CodeShape.WORD
    return CodeShape.CODE if any(ch.isdigit() for ch in key) else CodeShape.MAYBE


def is_near_code(token: str) -> bool:
    """True for a token that is not code-shaped but is a typo of one: a PCS code with one
    character missing or extra. Such tokens get "did you mean", never a word search."""
    if not token.isascii() or not token.isalnum():
        return False
    key = token.upper()
    return sum(ch.isdigit() for ch in key) >= 2 and bool(_NEAR_PCS.match(key))


def code_sets_of_shape(key: str, *, dotted: bool = False) -> list[str]:
    """The code sets (CodeSystem values) whose pattern a key fits, to name them in "not a
    valid … code". A dotted code is ICD-10-CM only; a PCS near miss counts as PCS."""
    if dotted or is_block_shaped(key):
        return ["icd10cm"]
    sets = [
        system
        for system, pattern in (
            ("icd10cm", _ICD10CM),
            ("icd10pcs", _ICD10PCS),
            ("icd10pcs", _ICD10PCS_TABLE),
            ("icd10pcs", _ICD10PCS_ROW),
            ("hcpcs", _HCPCS),
        )
        if pattern.match(key)
    ]
    if not sets and _NEAR_PCS.match(key):
        sets.append("icd10pcs")
    return list(dict.fromkeys(sets))


def is_block_shaped(key: str) -> bool:
    """True for an ICD-10-CM block range such as E08-E13 or I10-I1A (upper-case key)."""
    return bool(_ICD10CM_BLOCK.match(key))


def is_pcs_partial(key: str) -> bool:
    """True for a key that can only be part of a PCS code: a body system (0D) or a table
    row prefix of four or five characters (0DTJ, 0DTJ4)."""
    return bool(_ICD10PCS_BODY.match(key) or _ICD10PCS_ROW.match(key))


def is_pcs_shaped(key: str) -> bool:
    """True for a key in the PCS alphabet of four to seven characters (0DTJ … 0DTJ3ZZ),
    whose axes 4-7 can be checked against its table."""
    return bool(_ICD10PCS_ROW.match(key) or _NEAR_PCS.match(key) or _ICD10PCS.match(key))


def is_cpt_modifier(key: str) -> bool:
    """True for two digits: the shape of a CPT® modifier (25, 59); HCPCS Level II modifiers
    always have a letter."""
    return len(key) == 2 and key.isdigit()


def is_hcpcs_shaped(key: str) -> bool:
    """True for a letter and four digits (J1100), the HCPCS Level II code shape."""
    return bool(_HCPCS.match(key))


def is_cpt_shaped(key: str) -> bool:
    """True for a CPT-shaped key: five digits, or four digits and F/T/U/M."""
    return bool(_CPT.match(key))


def icd10cm_display(key: str) -> str:
    """Display form of an ICD-10-CM key: a dot after the third character (E119 -> E11.9)."""
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


# ICD-9-CM shapes (issue 10). Only forms no other code set can have are recognised without
# the `icd9` keyword: a dot after three digits (250.00, 428.0: ICD-10-CM always starts with
# a letter; PCS, HCPCS and CPT have no dots), a dot after two digits (47.01, a volume 3
# procedure) and E + three digits + dot (E880.9, where ICD-10-CM's dot comes after E88).
# V codes (V45.81) and undotted forms (25000 is also a CPT code, 250 a PCS table shape)
# need `/code icd9 V45.81`.
_ICD9_DX_DOTTED = re.compile(r"^[0-9]{3}\.[0-9]{1,2}$")
_ICD9_ECODE_DOTTED = re.compile(r"^E[0-9]{3}\.[0-9]$")
_ICD9_PROCEDURE_DOTTED = re.compile(r"^[0-9]{2}\.[0-9]{1,2}$")
_ICD9_ANY_DX = re.compile(r"^(?:[0-9]{3}|V[0-9]{2}|E[0-9]{3})(?:\.?[0-9]{1,2})?$")
_ICD9_ANY_PROCEDURE = re.compile(r"^[0-9]{2}(?:\.?[0-9]{1,2})?$")


def icd9_shape(token: str, *, forced: bool = False) -> str:
    """ "dx" or "sg" (procedure) when `token` is an ICD-9-CM code, else "".

    Without `forced` only the unambiguous dotted shapes count; with it (the user typed
    `icd9`), V codes and undotted forms do too.
    """
    text = token.strip().upper()
    if _ICD9_DX_DOTTED.match(text) or _ICD9_ECODE_DOTTED.match(text):
        return "dx"
    if _ICD9_PROCEDURE_DOTTED.match(text):
        return "sg"
    if forced:
        if _ICD9_ANY_PROCEDURE.match(text) and "." in text:
            return "sg"
        if _ICD9_ANY_DX.match(text):
            return "dx"
    return ""
