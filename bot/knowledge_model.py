"""Coding knowledge shown beside a code: MS-DRG, Medicare Code Editor, CMS-HCC, POA, ICD-9.

A separate block on the code card (`CodeCard.coding`), filled by `bot.codes.knowledge` for
the date of service. Every field is empty when nothing applies, so a card with no such
facts shows no coding lines at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class HccCategory:
    """One risk-adjustment category a diagnosis maps to: model V28, HCC 38, its label."""

    model: str
    hcc: str
    label: str


@dataclass(frozen=True, slots=True)
class CrosswalkCode:
    """An ICD-9-CM (or ICD-10) code a GEM maps to, with the GEM's flags spelled out."""

    code: str
    title: str
    approximate: bool = False
    no_map: bool = False
    combination: bool = False
    scenario: int = 0
    choice_list: int = 0


@dataclass(frozen=True, slots=True)
class CodingFacts:
    """What MS-DRG, the MCE, CMS-HCC, the POA list and the GEMs say about one code.

    `drg_version` is the MS-DRG version in force on `as_of` (v44 from 2026-10-01).
    `severity` is "MCC", "CC" or "" (neither). `cc_excluded_by` lists the principal
    diagnoses (display codes) that make the CC/MCC count as non-CC, `cc_excluded_total` how
    many there are in all; `cc_exclusions_version` the version that list comes from.
    `hac` is the HAC category number. `mce` holds the edit phrases (empty: none apply).
    `hcc` is CMS-HCC V28 then V24 then ESRD and RxHCC of payment year `hcc_year`.
    PCS cards: `or_procedure` is True/False (None when not an MS-DRG procedure at all);
    `icd9` holds the ICD-9 code(s) this code replaced (procedures) or maps back to.
    `guideline` is the chapter-specific guideline section ("I.C.4", heading).
    """

    as_of: str = ""
    drg_version: str = ""
    severity: str = ""
    cc_excluded_by: tuple[str, ...] = ()
    cc_excluded_total: int = 0
    cc_exclusions_version: str = ""
    hac: str = ""
    mce: tuple[str, ...] = ()
    hcc_year: int = 0
    hcc: tuple[HccCategory, ...] = ()
    poa_exempt: bool = False
    or_procedure: bool | None = None
    icd9: tuple[CrosswalkCode, ...] = ()
    guideline: tuple[str, str] | None = None
