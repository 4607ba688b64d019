"""Answers to `/code history CODE` and `/code changes SET RELEASE` (each costs one lookup).

The service charges; this module only computes the text from the catalog, so the CLI and
the chat answer the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from bot.codes.normalize import normalize_code
from bot.codes.timeline import changes_text
from bot.commands import Command
from bot.model import Action, CodeSystem

if TYPE_CHECKING:
    from bot.ports import CodeLookup as CodeCatalog


@dataclass(frozen=True)
class ReleaseAnswer:
    """A computed answer: `found` false means nothing to charge (`text` says why)."""

    found: bool
    title: str
    text: str
    actions: tuple[Action, ...] = ()


def history_answer(catalog: CodeCatalog, command: Command) -> ReleaseAnswer:
    """The timeline of the one code named, in every code set it exists in."""
    typed = command.codes[0].text
    found = catalog.history(typed)
    shown = normalize_code(typed)[:12] or "That"
    if not found:
        return ReleaseAnswer(
            False, "Invalid code", f"{shown} is not a code in any release held. Check it."
        )
    text = "\n\n".join("\n".join(lines) for _card, lines in found)
    return ReleaseAnswer(True, f"History of {found[0][0].code}", text)


def changes_answer(catalog: CodeCatalog, command: Command, day: date) -> ReleaseAnswer:
    """Counts and first entries (or the full list) of a release's changes."""
    system = command.system or CodeSystem.ICD10CM
    words = [arg.upper() for arg in command.args]
    full = "FULL" in words
    release = next((w for w in words if w != "FULL"), "")
    changes = catalog.changes(system.value, release, day, full=full)
    if changes is None:
        held = ", ".join(r.release for r in catalog.calendar.releases(system.value)) or "none"
        return ReleaseAnswer(
            False,
            "Unknown release",
            f"No {system.label} release {release[:16]} is held. Releases held: {held}.",
        )
    text = changes_text(changes, system.label, full=full)
    rid = changes.release.release
    actions: tuple[Action, ...] = ()
    if not full and sum(changes.counts.values()) > len(changes.entries):
        actions = (Action("run", f"changes {system.value} {rid} full", "Full list"),)
    return ReleaseAnswer(True, f"{system.label} {rid} changes", text, actions)
