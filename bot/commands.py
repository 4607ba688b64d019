"""Parse the text of a `/code …` message into a Command.

The parser is pure and total: any string (empty, 10 KB, emoji, control characters, SQL,
mention syntax) gives a Command and never raises. Adapters may pass the text with or
without the leading `/code` and with the bot mention already removed or not.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from bot.as_of import split_as_of
from bot.codes.normalize import CodeShape, is_near_code, normalize_code, shape_of
from bot.knowledge_grammar import all_icd9, knowledge_action, validate
from bot.model import CodeSystem

MAX_INPUT_CHARS = 500  # longer messages are refused: no medical code query needs more
MAX_CODES_PER_REQUEST = 10
MAX_NOTE_CHARS = 500

# <@U123>, <@!123>, <#C1|x>, <!channel>, <!here>, <!subteam^S1> (Slack and Discord syntax)
_MENTION = re.compile(r"<[@#!][^<>]{0,80}>")
_COMMAND_PREFIX = re.compile(r"^\s*/?code\b", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# Coders paste lists: "E11.9, I10", "E11.9;I10", "N18.30,E11.22", "S72.001A." (issue 9.12).
_LIST_SEPARATORS = re.compile(r"[\s,;]+")
_TRAILING_PUNCTUATION = ".,;:!?)"
_LEADING_PUNCTUATION = "("
_SYSTEM_NAMES = {
    "icd10cm": CodeSystem.ICD10CM,
    "icd-10-cm": CodeSystem.ICD10CM,
    "icd10": CodeSystem.ICD10CM,
    "cm": CodeSystem.ICD10CM,
    "icd10pcs": CodeSystem.ICD10PCS,
    "icd-10-pcs": CodeSystem.ICD10PCS,
    "pcs": CodeSystem.ICD10PCS,
    "hcpcs": CodeSystem.HCPCS,
    "cpt": CodeSystem.CPT,
}


class CommandKind(StrEnum):
    """Every command of the grammar (DESIGN.md §3)."""

    LOOKUP = "lookup"
    SEARCH = "search"
    SHARE = "share"
    RECENT = "recent"
    STATS = "stats"
    NOTE = "note"
    REGISTER = "register"
    QUOTA = "quota"
    HELP = "help"
    ADMIN = "admin"
    FULL = "full"  # /code full E11.9: the whole card, nothing cut (free right after a lookup)
    HISTORY = "history"  # /code history E11.9: the code's timeline across releases
    CHANGES = "changes"  # /code changes icd10cm FY2027: what a release added/deleted/revised
    INVALID = "invalid"
    KNOWLEDGE = "knowledge"  # drg, group, ICD-9 crosswalk, guidelines (bot.knowledge_grammar)


FREE_COMMANDS = frozenset(
    {
        CommandKind.HELP,
        CommandKind.QUOTA,
        CommandKind.REGISTER,
        CommandKind.ADMIN,
        CommandKind.INVALID,
        CommandKind.RECENT,
        CommandKind.STATS,
        CommandKind.NOTE,
    }
)


@dataclass(frozen=True)
class CodeToken:
    """A code as typed, with how sure the parser is that it is a code."""

    text: str
    shape: CodeShape
    # `/code modifier XX` and `-XX`: a modifier or nothing, never the PCS body system XX
    modifier_only: bool = False


@dataclass(frozen=True)
class Command:
    """A parsed message.

    LOOKUP/SHARE: `codes`. SEARCH: `query`, optional `system`. NOTE: `codes` (one) and
    `text` (empty text with `args == ("delete",)` removes the note). ADMIN: `args`, e.g.
    ("grant", "<@U1>", "50"), ("plan", "team", "unlimited"), ("usage",).
    HISTORY: `codes` (one). CHANGES: `system` (None: ICD-10-CM) and `args` (the release
    named, e.g. ("FY2027",), or () for the release in force).
    INVALID: `text` is the message for the user. `skipped`: codes of a LOOKUP beyond
    `MAX_CODES_PER_REQUEST`, not answered (the reply says so).
    `as_of` is the date of service the user named (`on 2025-03-01`, `dos …`, `@…`); None
    means today, as the service's clock says.
    """

    kind: CommandKind
    codes: tuple[CodeToken, ...] = ()
    query: str = ""
    system: CodeSystem | None = None
    text: str = ""
    args: tuple[str, ...] = ()
    as_of: date | None = None
    skipped: tuple[str, ...] = ()

    @property
    def is_free(self) -> bool:
        """Free commands never cost quota."""
        return self.kind in FREE_COMMANDS


def clean_text(raw: str, *, keep_mentions: bool = False) -> str:
    """Normalise user text: NFKC, no control characters, single spaces, no mention syntax.

    `keep_mentions` keeps `<@U123>` user mentions (admin commands name their target so).
    """
    text = unicodedata.normalize("NFKC", raw[: MAX_INPUT_CHARS * 4])
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    if not keep_mentions:
        text = _MENTION.sub(" ", text)
    text = text.replace("@everyone", " ").replace("@here", " ")
    return _SPACE.sub(" ", text).strip()


def parse(raw: str) -> Command:
    """Parse one message into a Command. Never raises."""
    if len(raw) > MAX_INPUT_CHARS * 4:
        return _too_long()
    text = clean_text(_COMMAND_PREFIX.sub("", raw, count=1))
    if len(text) > MAX_INPUT_CHARS:
        return _too_long()
    if not text:
        return Command(CommandKind.HELP)
    words = text.split(" ")
    head = words[0].lower()
    if head in ("note", "admin"):
        # a note's text may say "seen on 2025-03-01": never read dates out of it
        return _parse_words(raw, text, words)
    as_of = split_as_of(text)
    if as_of.error:
        return Command(CommandKind.INVALID, text=as_of.error)
    if as_of.day is None:
        return _parse_words(raw, text, words)
    if not as_of.text:
        return Command(
            CommandKind.INVALID,
            text="A date needs a code or words with it (e.g. /code E11.9 on 2025-03-01).",
        )
    command = _parse_words(raw, as_of.text, as_of.text.split(" "))
    if command.kind in _DATED_COMMANDS:
        return replace(command, as_of=as_of.day)
    return command


_DATED_COMMANDS = frozenset(
    {
        CommandKind.LOOKUP,
        CommandKind.SEARCH,
        CommandKind.SHARE,
        CommandKind.FULL,
        CommandKind.HISTORY,
        CommandKind.CHANGES,
        CommandKind.KNOWLEDGE,
    }
)


def _parse_words(raw: str, text: str, words: list[str]) -> Command:
    """Parse the message once the as-of phrase (if any) is out of `text`."""
    head = words[0].lower()
    rest = words[1:]
    if head in ("help", "?", "usage") and not rest:
        return Command(CommandKind.HELP)
    if head in ("quota", "recent", "stats", "register") and not rest:
        return Command(CommandKind(head))
    if head == "search":
        return _parse_search(rest)
    if head == "share":
        return _parse_codes(rest, CommandKind.SHARE, "Usage: /code share E11.9")
    if head in ("modifier", "mod") and len(rest) == 1:
        command = _parse_codes(rest, CommandKind.LOOKUP, "Usage: /code modifier LT")
        codes = tuple(replace(token, modifier_only=True) for token in command.codes)
        return replace(command, codes=codes)
    if head == "full":
        return _parse_codes(rest, CommandKind.FULL, "Usage: /code full E11.9")
    if head == "history":
        return _parse_codes(rest, CommandKind.HISTORY, "Usage: /code history E11.9")
    if head == "changes":
        return _parse_changes(rest)
    if head == "note":
        return _parse_note(rest)
    action = knowledge_action(head, rest)
    if action:
        usage = validate(action, rest)
        if usage:
            return Command(CommandKind.INVALID, text=usage)
        return Command(CommandKind.KNOWLEDGE, args=(action, *rest))
    if all_icd9(words):
        return Command(CommandKind.KNOWLEDGE, args=("icd9", *words))
    if head == "admin":
        return _parse_admin(
            clean_text(_COMMAND_PREFIX.sub("", raw, count=1), keep_mentions=True).split(" ")[1:]
        )
    return _parse_lookup_or_search(words, text)


def _too_long() -> Command:
    return Command(
        CommandKind.INVALID,
        text=f"That message is too long. Send a code or up to {MAX_INPUT_CHARS} characters.",
    )


def _parse_search(rest: list[str]) -> Command:
    system = None
    if rest and rest[0].lower() in _SYSTEM_NAMES:
        system = _SYSTEM_NAMES[rest[0].lower()]
        rest = rest[1:]
    query = " ".join(rest)
    if not query:
        return Command(
            CommandKind.INVALID,
            text="Usage: /code search [icd10cm|icd10pcs|hcpcs|cpt] WORDS "
            "(e.g. /code search hcpcs knee brace)",
        )
    return Command(CommandKind.SEARCH, query=query, system=system)


def code_words(text: str) -> list[str]:
    """The words of a pasted list: split on spaces, commas and semicolons, sentence
    punctuation around each word dropped ("S72.001A." -> "S72.001A")."""
    words = []
    for word in _LIST_SEPARATORS.split(text):
        word = word.lstrip(_LEADING_PUNCTUATION).rstrip(_TRAILING_PUNCTUATION)
        if word:
            words.append(word)
    return words


def _token(word: str) -> CodeToken:
    """A word as a code token; a near miss of a code ("0DTJ4Z") counts as a code, so it
    gets "did you mean" rather than a word search."""
    shape = shape_of(word)
    if shape is CodeShape.WORD and is_near_code(word):
        shape = CodeShape.CODE
    return CodeToken(word, shape, modifier_only=word.startswith("-"))


def _distinct(tokens: list[CodeToken]) -> list[CodeToken]:
    """Tokens without repeats: "E11.9 e119" is one code, one card and one charge."""
    seen: set[tuple[str, bool]] = set()
    out: list[CodeToken] = []
    for token in tokens:
        key = (normalize_code(token.text), "." in token.text)
        if key not in seen:
            seen.add(key)
            out.append(token)
    return out


def _parse_codes(rest: list[str], kind: CommandKind, usage: str) -> Command:
    tokens = _distinct([_token(word) for word in code_words(" ".join(rest))])
    if not tokens or any(token.shape is CodeShape.WORD for token in tokens):
        return Command(CommandKind.INVALID, text=usage)
    if kind in (CommandKind.SHARE, CommandKind.FULL, CommandKind.HISTORY) and len(tokens) != 1:
        return Command(CommandKind.INVALID, text=usage)
    return _capped(Command(kind, codes=tuple(tokens)))


def _capped(command: Command) -> Command:
    """The first `MAX_CODES_PER_REQUEST` codes are answered; the rest are named as skipped."""
    if len(command.codes) <= MAX_CODES_PER_REQUEST:
        return command
    kept, rest = command.codes[:MAX_CODES_PER_REQUEST], command.codes[MAX_CODES_PER_REQUEST:]
    return replace(command, codes=kept, skipped=tuple(token.text for token in rest))


def _parse_changes(rest: list[str]) -> Command:
    """`changes [icd10cm|icd10pcs|hcpcs] [RELEASE]`, in either order (RELEASE: FY2027, 2026-01)."""
    usage = (
        "Usage: /code changes [icd10cm|icd10pcs|hcpcs] [RELEASE] "
        "(e.g. /code changes icd10cm FY2027, /code changes hcpcs 2026-01)"
    )
    system: CodeSystem | None = None
    release = ""
    full = False
    for word in rest:
        name = word.lower()
        if name in _SYSTEM_NAMES and system is None and _SYSTEM_NAMES[name] is not CodeSystem.CPT:
            system = _SYSTEM_NAMES[name]
        elif name in ("full", "all") and not full:
            full = True  # the Full list button
        elif not release and len(word) <= 16 and word.replace("-", "").isalnum():
            release = word.upper()
        else:
            return Command(CommandKind.INVALID, text=usage)
    args = ((release,) if release else ()) + (("FULL",) if full else ())
    return Command(CommandKind.CHANGES, system=system, args=args)


def _parse_note(rest: list[str]) -> Command:
    usage = "Usage: /code note E11.9 TEXT (or /code note E11.9 delete)"
    if not rest or shape_of(rest[0]) is CodeShape.WORD:
        return Command(CommandKind.INVALID, text=usage)
    token = CodeToken(rest[0], shape_of(rest[0]))
    body = " ".join(rest[1:]).strip()
    if not body:
        return Command(CommandKind.INVALID, text=usage)
    if body.lower() in ("delete", "remove", "clear"):
        return Command(CommandKind.NOTE, codes=(token,), args=("delete",))
    if len(body) > MAX_NOTE_CHARS:
        return Command(
            CommandKind.INVALID, text=f"Notes are limited to {MAX_NOTE_CHARS} characters."
        )
    return Command(CommandKind.NOTE, codes=(token,), text=body)


def _parse_admin(rest: list[str]) -> Command:
    usage = (
        "Usage: /code admin grant @user N | admin plan @user PLAN | "
        "admin plan team PLAN | admin usage"
    )
    args = tuple(rest)
    if not args:
        return Command(CommandKind.INVALID, text=usage)
    action = args[0].lower()
    if action == "usage" and len(args) == 1:
        return Command(CommandKind.ADMIN, args=("usage",))
    if action in ("grant", "plan") and len(args) == 3:
        return Command(CommandKind.ADMIN, args=(action, args[1], args[2]))
    return Command(CommandKind.INVALID, text=usage)


def _parse_lookup_or_search(words: list[str], text: str) -> Command:
    tokens = [_token(word) for word in code_words(text)]
    if tokens and all(token.shape is not CodeShape.WORD for token in tokens):
        # "ms", "bladder": code-shaped words are looked up first; the service searches
        # the whole text instead when none of them is a code.
        return _capped(Command(CommandKind.LOOKUP, codes=tuple(_distinct(tokens)), query=text))
    return Command(CommandKind.SEARCH, query=text)
