"""Autocomplete choices for `/code query:` (gateway client and HTTP interactions alike)."""

from __future__ import annotations

from collections.abc import Callable

from adapters.discord_embeds import CHOICE_TEXT_MAX, CHOICES_MAX, choice_label
from bot.commands import clean_text
from bot.model import CodeRef

# Command words whose argument is a code: "share E11" completes to "share E11.9".
COMMAND_WORDS = ("share", "note", "search", "modifier")

Autocomplete = Callable[..., list[CodeRef]]


def choice_pairs(autocomplete: Autocomplete, current: str) -> list[tuple[str, str]]:
    """(name, value) choices for what the user typed so far: ≤ 25, values unique, ≤ 100 chars."""
    # normalised as the command will be (NFKC, spaces), so `ｓｈａｒｅ　Ｅ１１` completes too
    text = clean_text(current[:400])
    lead = ""
    first, _, rest = text.partition(" ")
    if first.lower() in COMMAND_WORDS and rest:
        # "share E11" completes the code and keeps the command word in the value.
        lead, text = first.lower() + " ", rest
    refs = autocomplete(text, limit=CHOICES_MAX) if text else []
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    for ref in refs[:CHOICES_MAX]:
        value = (lead + ref.code)[:CHOICE_TEXT_MAX]
        if value in seen:
            continue  # Discord rejects an answer whose choices repeat a value
        seen.add(value)
        pairs.append((choice_label(ref), value))
    return pairs
