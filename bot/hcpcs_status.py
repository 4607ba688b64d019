"""The status line of an HCPCS Level II card, in the words a biller needs.

A terminated code reads "terminated: last date of service 2025-12-31" (the CMS file's
termination date is the last day the code may be used), with its replacement when the file
names one. An active code CMS does not pay reads "not payable by Medicare (coverage I)"
instead of a bare "billable" (coverage I, M and S in the record layout), with the code the
file's cross-reference points to ("use A0425").
"""

from __future__ import annotations

from bot.model import CodeCard, CodeSystem

USE_INSTEAD = "Use instead"
SEE = "See"
# Coverage codes (HCPCS record layout, field 16) under which Medicare does not pay.
NOT_PAID_COVERAGE = {
    "I": "not payable by Medicare",
    "M": "non-covered by Medicare",
    "S": "non-covered by Medicare statute",
}


def _cross_references(card: CodeCard) -> list[str]:
    return [
        value.split(" ", 1)[0] for label, value in card.attributes if label in (USE_INSTEAD, SEE)
    ]


def hcpcs_status(card: CodeCard) -> str:
    """The status line for an HCPCS card ('' for other code sets: the caller decides)."""
    if card.system is not CodeSystem.HCPCS:
        return ""
    targets = _cross_references(card)
    use = f"; use {', '.join(targets)}" if targets else ""
    if card.status == "terminated":
        ended = card.effective.get("terminated", "")
        return f"terminated: last date of service {ended}{use}" if ended else f"terminated{use}"
    coverage = next((value for label, value in card.attributes if label == "Coverage"), "")
    code = coverage.split(":", 1)[0].strip()
    if code in NOT_PAID_COVERAGE:
        kind = "modifier, " if card.kind == "modifier" else "active, "
        return f"{kind}{NOT_PAID_COVERAGE[code]} (coverage {code}){use}"
    return ""
