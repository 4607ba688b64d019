"""Attach the coding-knowledge block to the cards of a reply, for the date of service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from bot.codes.knowledge import KnowledgeBase
from bot.model import CodeCard, ReplyItem


def with_coding(
    items: Sequence[ReplyItem], knowledge: KnowledgeBase | None, as_of: date
) -> list[ReplyItem]:
    """The items with `CodeCard.coding` filled in (unchanged without a knowledge base)."""
    if knowledge is None:
        return list(items)
    out: list[ReplyItem] = []
    for item in items:
        if isinstance(item, CodeCard):
            facts = knowledge.facts(item, as_of)
            out.append(replace(item, coding=facts) if facts is not None else item)
        else:
            out.append(item)
    return out
