"""The coding-knowledge block of a card as (label, value) lines, shared by every renderer.

Plain text, Slack and Discord all show the same lines under the card's own facts; a code
with no such facts gets no lines (never an empty "HCC: none").
"""

from __future__ import annotations

from typing import Any

from bot.knowledge_model import CodingFacts, CrosswalkCode

MAX_EXCLUSIONS_COMPACT = 0  # the compact card gives the count; the full card the codes
MAX_ICD9_SHOWN = 4


def crosswalk_flags(entry: CrosswalkCode) -> str:
    """The GEM flags of one entry in words: `approximate`, `combination 1.2`, `no map`."""
    flags = []
    if entry.no_map:
        flags.append("no map")
    if entry.approximate:
        flags.append("approximate")
    if entry.combination:
        flags.append(f"combination: scenario {entry.scenario}, list {entry.choice_list}")
    return ", ".join(flags)


def _icd9_line(entries: tuple[CrosswalkCode, ...]) -> str:
    seen: dict[str, CrosswalkCode] = {}
    for entry in entries:
        seen.setdefault(entry.code, entry)
    shown = list(seen.values())[:MAX_ICD9_SHOWN]
    parts = []
    for entry in shown:
        flags = crosswalk_flags(entry)
        parts.append(f"{entry.code} {entry.title}" + (f" ({flags})" if flags else ""))
    more = len(seen) - len(shown)
    return "; ".join(parts) + (f"; … and {more} more" if more else "")


def coding_lines(facts: CodingFacts | None, *, full: bool = False) -> list[tuple[str, str]]:
    """The card's coding block: MS-DRG, HAC, MCE, HCC, POA, O.R., ICD-9, guideline.

    `full` adds the principal diagnoses that exclude the CC/MCC.
    """
    if facts is None:
        return []
    lines: list[tuple[str, str]] = []
    drg = f"MS-DRG {facts.drg_version}" if facts.drg_version else "MS-DRG"
    if facts.severity:
        value = facts.severity
        if facts.cc_excluded_total:
            value += (
                f" (counts as non-CC with {facts.cc_excluded_total} principal diagnoses"
                f"{'' if full else ', listed on the full card'})"
            )
        lines.append((drg, value))
        if full and facts.cc_excluded_by:
            more = facts.cc_excluded_total - len(facts.cc_excluded_by)
            listed = ", ".join(facts.cc_excluded_by) + (f", … and {more} more" if more else "")
            source = (
                f" (exclusion list of {facts.cc_exclusions_version})"
                if facts.cc_exclusions_version and facts.cc_exclusions_version != facts.drg_version
                else ""
            )
            lines.append(
                (f"{facts.severity} excluded when the principal diagnosis is", listed + source)
            )
    if facts.hac:
        lines.append(("HAC", f"category {facts.hac} (hospital-acquired condition when not POA)"))
    if facts.or_procedure is not None:
        label = "O.R. procedure" if facts.or_procedure else "non-O.R. procedure"
        note = f" (list of {facts.cc_exclusions_version})" if facts.cc_exclusions_version else ""
        lines.append((drg, label + note))
    if facts.mce:
        lines.append(("Medicare Code Editor", "; ".join(facts.mce)))
    cms_hcc = [h for h in facts.hcc if not h.model.startswith(("RxHCC", "ESRD"))]
    if cms_hcc:
        lines.append(
            (
                f"CMS-HCC (PY{facts.hcc_year})",
                " · ".join(f"{h.model} HCC {h.hcc} {h.label}".strip() for h in cms_hcc),
            )
        )
    rx = [h for h in facts.hcc if h.model.startswith("RxHCC")]
    if rx:
        lines.append(
            (
                f"RxHCC (PY{facts.hcc_year})",
                " · ".join(f"{h.model.split()[-1]} RxHCC {h.hcc} {h.label}" for h in rx),
            )
        )
    if facts.poa_exempt:
        lines.append(("POA", "exempt from POA reporting (CDC FY2026 list)"))
    if facts.icd9:
        lines.append(("ICD-9-CM (GEM)", _icd9_line(facts.icd9)))
    if facts.guideline:
        section, heading = facts.guideline
        lines.append(("Guideline", f"{section} {heading} (/code guideline {section})"))
    return lines


def coding_json(facts: CodingFacts | None) -> dict[str, Any] | None:
    """Every coding fact for `--json` (None when the card has none)."""
    if facts is None:
        return None
    return {
        "as_of": facts.as_of,
        "ms_drg": {
            "version": facts.drg_version,
            "severity": facts.severity or None,
            "cc_excluded_by_pdx": list(facts.cc_excluded_by),
            "cc_excluded_total": facts.cc_excluded_total,
            "exclusions_version": facts.cc_exclusions_version or None,
            "hac": facts.hac or None,
            "or_procedure": facts.or_procedure,
        },
        "mce": list(facts.mce),
        "hcc": {
            "payment_year": facts.hcc_year or None,
            "categories": [{"model": h.model, "hcc": h.hcc, "label": h.label} for h in facts.hcc],
        },
        "poa_exempt": facts.poa_exempt,
        "icd9": [
            {
                "code": e.code,
                "title": e.title,
                "approximate": e.approximate,
                "no_map": e.no_map,
                "combination": e.combination,
                "scenario": e.scenario,
                "choice_list": e.choice_list,
            }
            for e in facts.icd9
        ],
        "guideline": (
            {"section": facts.guideline[0], "heading": facts.guideline[1]}
            if facts.guideline
            else None
        ),
    }
