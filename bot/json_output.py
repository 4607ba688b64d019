"""JSON shapes of the CLI contract (DESIGN.md §8): lookup cards, errors and search hits."""

from __future__ import annotations

from typing import Any

from bot.model import CodeCard, CodeRef, CptInfo, NotFound, SearchHit
from bot.render_knowledge import coding_json


def _ref(ref: CodeRef) -> dict[str, Any]:
    return {
        "code": ref.code,
        "system": ref.system.value,
        "title": ref.title,
        "billable": ref.billable,
    }


def card_json(card: CodeCard) -> dict[str, Any]:
    """A code card in the `codebot lookup --json` shape."""
    return {
        "code": card.code,
        "system": card.system.value,
        "title": card.title,
        "short_title": card.short_title,
        "kind": card.kind,
        "billable": card.billable,
        "status": card.status,
        "parents": [_ref(parent) for parent in card.parents],
        "children": [_ref(child) for child in card.children],
        "children_total": card.children_total,
        "notes": {key: list(values) for key, values in card.notes.items()},
        "effective": dict(card.effective),
        "attributes": _attributes(card.attributes),
        "source": dict(card.source),
        "history": list(card.history),
        "as_of": card.as_of,
        "coding": coding_json(card.coding),
    }


def not_found_json(item: NotFound) -> dict[str, Any]:
    """An unknown code: the error and the did-you-mean codes."""
    return {
        "code": item.query,
        "error": item.message,
        "suggestions": [_ref(ref) for ref in item.suggestions],
    }


def cpt_info_json(item: CptInfo) -> dict[str, Any]:
    """A CPT-shaped code without a licensed CPT file loaded."""
    return {
        "code": item.code,
        "system": "cpt",
        "error": "CPT® code: descriptors are licensed by the AMA and no licensed CPT file "
        "is loaded (codebot data import-cpt FILE).",
        "section": item.section,
        "range": item.range_label,
        "suggestions": [],
    }


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """One search result."""
    return {
        "code": hit.code,
        "system": hit.system.value,
        "title": hit.title,
        "score": round(hit.score, 4),
        "billable": hit.billable,
        **({"why": list(hit.why)} if hit.why else {}),
    }


def _attributes(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Attributes by label; a repeated label (G0124's two pricing indicators, K0856's types
    of service) keeps every value, joined with "; " in file order."""
    out: dict[str, str] = {}
    for label, value in pairs:
        out[label] = f"{out[label]}; {value}" if label in out else value
    return out
