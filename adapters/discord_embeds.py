"""Reply -> Discord message payload (embeds + components), always within Discord's limits.

Pure: builds plain payload dicts and component specs; `adapters/discord_bot.py` turns them
into discord.py objects. `validate_message` checks any message payload as it goes over the
wire (every test runs it on everything the bot sent), so a limit we forgot here fails a test
instead of a user's request (Discord answers an over-limit message with 400 and the user
sees nothing).

Escaping: text a user typed (team notes, echoed queries) is markdown- and mention-escaped;
every message also carries `allowed_mentions: {"parse": []}` so nothing can ping even if
escaping missed something.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.model import (
    Action,
    CodeCard,
    CodeRef,
    CptInfo,
    NotFound,
    Reply,
    ReplyItem,
    ReplyKind,
    SearchHit,
)
from bot.render import (
    billing_status,
    children_count,
    distinct_short_title,
    note_label,
    omitted_line,
    ordered_notes,
    render_cpt_info,
)
from bot.render_knowledge import coding_lines

# Discord's documented limits (https://discord.com/developers/docs/resources/message).
CONTENT_MAX = 2000
EMBEDS_MAX = 10
EMBED_TITLE_MAX = 256
EMBED_DESCRIPTION_MAX = 4096
EMBED_FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_NAME_MAX = 256
EMBED_TOTAL_MAX = 6000  # summed over every embed of one message
ACTION_ROWS_MAX = 5
BUTTONS_PER_ROW = 5
BUTTON_LABEL_MAX = 80
CUSTOM_ID_MAX = 100
SELECT_OPTIONS_MAX = 25
SELECT_TEXT_MAX = 100  # option label, value, description
SELECT_PLACEHOLDER_MAX = 150
CHOICES_MAX = 25
CHOICE_TEXT_MAX = 100  # autocomplete choice name and value

EPHEMERAL = 1 << 6
NO_MENTIONS: dict[str, Any] = {"parse": [], "replied_user": False}

# custom_id scheme, kept short so values fit the 100-character limit and stateless so a
# button still works after a restart: "cb:run:<command text>" runs that command text;
# the search select is "cb:open" and each option's value is the code to open.
RUN_PREFIX = "cb:run:"
BUTTON_ACTIONS = frozenset({"share", "full"})  # actions that become buttons on a card
OPEN_SELECT_ID = "cb:open"

COLOR_BILLABLE = 0x2E7D32
COLOR_HEADER = 0xEF6C00
COLOR_TERMINATED = 0xC62828
COLOR_INFO = 0x5865F2
COLOR_WARN = 0xF9A825
COLOR_ERROR = 0xC62828

MAX_CHILDREN_LINES = 25
ELLIPSIS = "…"

_EVERYONE = re.compile(r"@(everyone|here)", re.IGNORECASE)
_USER_MENTION = re.compile(r"<(@[!&]?|#)(\d{15,21})>")
_MARKDOWN = re.compile(r"([\\*_~|`\[\]])")
_LINE_START = re.compile(r"^(\s*)(#{1,3}\s|>|-\s)", re.MULTILINE)


def escape_user_text(text: str) -> str:
    """Neutralise text a user typed: no markdown effects, no mention or mass-mention syntax.

    A zero-width space after `@` breaks `@everyone`/`@here`; `<@123>` loses its angle form.
    (allowed_mentions none already stops pings; this also stops the *display* of one.)
    """
    text = _MARKDOWN.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)  # headers, quotes, list bullets
    text = _EVERYONE.sub("@\u200b\\1", text)
    return _USER_MENTION.sub(lambda m: f"{m.group(1)}\u200b{m.group(2)}", text)


def neutralise_mentions(text: str) -> str:
    """For our own text (which may echo user text): keep markdown, break mass mentions."""
    return _EVERYONE.sub("@\u200b\\1", text)


def cut(text: str, limit: int) -> str:
    """`text` shortened to at most `limit` characters, with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 0:
        return ""
    return text[: limit - 1].rstrip() + ELLIPSIS


def choice_label(ref: CodeRef) -> str:
    """Autocomplete choice name: "E11.9 — Type 2 diabetes…", cut to Discord's 100 chars."""
    return cut(f"{ref.code} — {ref.title}", CHOICE_TEXT_MAX)


# ---------------------------------------------------------------- output shapes


@dataclass(frozen=True)
class ButtonSpec:
    """A button to show: `custom_id` encodes what clicking it runs."""

    custom_id: str
    label: str
    style: int = 1  # 1 primary, 2 secondary


@dataclass(frozen=True)
class SelectOptionSpec:
    """One option of a select menu."""

    label: str
    value: str
    description: str = ""


@dataclass(frozen=True)
class SelectSpec:
    """A string select menu."""

    custom_id: str
    placeholder: str
    options: tuple[SelectOptionSpec, ...]


@dataclass
class DiscordMessage:
    """A reply ready for Discord: embeds as payload dicts, components as specs."""

    embeds: list[dict[str, Any]] = field(default_factory=list)
    buttons: list[ButtonSpec] = field(default_factory=list)
    select: SelectSpec | None = None
    ephemeral: bool = True
    content: str = ""

    def components(self) -> list[dict[str, Any]]:
        """Action rows as Discord JSON: the select first, then buttons five to a row."""
        rows: list[dict[str, Any]] = []
        if self.select is not None:
            rows.append(
                {
                    "type": 1,
                    "components": [
                        {
                            "type": 3,
                            "custom_id": self.select.custom_id,
                            "placeholder": self.select.placeholder,
                            "min_values": 1,
                            "max_values": 1,
                            "options": [
                                {"label": o.label, "value": o.value, "description": o.description}
                                if o.description
                                else {"label": o.label, "value": o.value}
                                for o in self.select.options
                            ],
                        }
                    ],
                }
            )
        for start in range(0, len(self.buttons), BUTTONS_PER_ROW):
            row = self.buttons[start : start + BUTTONS_PER_ROW]
            rows.append(
                {
                    "type": 1,
                    "components": [
                        {"type": 2, "style": b.style, "label": b.label, "custom_id": b.custom_id}
                        for b in row
                    ],
                }
            )
        return rows[:ACTION_ROWS_MAX]

    def to_payload(self) -> dict[str, Any]:
        """The message JSON as Discord receives it (for tests and validation)."""
        payload: dict[str, Any] = {
            "embeds": self.embeds,
            "components": self.components(),
            "allowed_mentions": dict(NO_MENTIONS),
        }
        if self.content:
            payload["content"] = self.content
        if self.ephemeral:
            payload["flags"] = EPHEMERAL
        return payload


# ---------------------------------------------------------------- embed building


class _EmbedBuilder:
    """Builds one embed dict while keeping it inside a character budget and Discord's caps."""

    def __init__(self, title: str, *, budget: int, color: int) -> None:
        self.budget = min(budget, EMBED_TOTAL_MAX)
        self.data: dict[str, Any] = {"type": "rich", "color": color, "fields": []}
        self.used = 0
        self.data["title"] = self._take(cut(title, EMBED_TITLE_MAX))

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def _take(self, text: str) -> str:
        shown = cut(text, self.remaining)
        self.used += len(shown)
        return shown

    def description(self, text: str) -> None:
        if text:
            self.data["description"] = self._take(cut(text, EMBED_DESCRIPTION_MAX))

    def add_field(
        self, name: str, value: str, *, inline: bool = False, cap: int = FIELD_VALUE_MAX
    ) -> bool:
        """Add a field, shortening its value to fit; False when it no longer fits at all."""
        fields: list[dict[str, Any]] = self.data["fields"]
        name = cut(name, FIELD_NAME_MAX)
        if not value or len(fields) >= EMBED_FIELDS_MAX or self.remaining < len(name) + 20:
            return False
        self.used += len(name)
        shown = self._take(cut(value, min(cap, FIELD_VALUE_MAX)))
        fields.append({"name": name, "value": shown, "inline": inline})
        return True

    def add_lines_field(
        self,
        name: str,
        lines: Sequence[str],
        total: int | None = None,
        *,
        cap: int = FIELD_VALUE_MAX,
    ) -> bool:
        """A field listing `lines`, dropping whole lines (with "… and N more") to fit `cap`."""
        total = len(lines) if total is None else total
        limit = min(FIELD_VALUE_MAX, cap, self.remaining - len(name) - 2)
        if limit < 20:
            return False
        shown: list[str] = []
        size = 0
        reserve = len(f"\n{ELLIPSIS} and {total} more")
        for line in lines:
            line = cut(line, limit - reserve)
            if size + len(line) + 1 + reserve > limit:
                break
            shown.append(line)
            size += len(line) + 1
        hidden = total - len(shown)
        text = "\n".join(shown)
        if hidden > 0:
            text += f"\n{ELLIPSIS} and {hidden} more"
        return self.add_field(name, text.strip(), cap=limit)

    def add_split_fields(self, name: str, lines: Sequence[str], *, cap: int) -> None:
        """Every line, in as many fields named `name` ("… (cont.)") as the lines need, all
        within `cap` characters; what still does not fit ends in "… and N more"."""
        start = 0
        part_name = name
        while start < len(lines):
            room = min(cap, self.remaining) - len(part_name) - 2
            if room < 40 or len(self.data["fields"]) >= EMBED_FIELDS_MAX:
                return
            value_room = min(FIELD_VALUE_MAX, room)
            chunk: list[str] = []
            size = 0
            for line in lines[start:]:
                line = cut(line, value_room)
                if chunk and size + len(line) + 1 > value_room:
                    break
                chunk.append(line)
                size += len(line) + 1
            last_field = len(self.data["fields"]) == EMBED_FIELDS_MAX - 1
            rest = len(lines) - start - len(chunk)
            if rest and (last_field or room - size < 60):
                more = f"{ELLIPSIS} and {rest} more"
                while chunk and size + len(more) + 1 > value_room:
                    size -= len(chunk.pop()) + 1
                    rest += 1
                    more = f"{ELLIPSIS} and {rest} more"
                chunk.append(more)
                start = len(lines)
            else:
                start += len(chunk)
            before = self.used
            self.add_field(part_name, "\n".join(chunk), cap=value_room)
            cap -= self.used - before
            part_name = f"{name} (cont.)"

    def footer(self, text: str) -> None:
        if text and self.remaining > 0:
            self.data["footer"] = {"text": self._take(cut(text, FOOTER_MAX))}

    def build(self) -> dict[str, Any]:
        if not self.data["fields"]:
            del self.data["fields"]
        return self.data


def _safe_title(text: str) -> str:
    # Code titles come from the official files, but escape anyway: a `*` or `_` in a
    # descriptor must print as itself.
    return escape_user_text(text)


def _card_embed(card: CodeCard, budget: int, full: bool = False) -> dict[str, Any]:
    """A card as one embed within `budget` characters; `full` lists every child loaded and
    every note line, over several fields where one field (1,024) is too small."""
    if card.status == "terminated":
        color = COLOR_TERMINATED
    elif card.billable or card.kind == "modifier":
        color = COLOR_BILLABLE
    else:
        color = COLOR_HEADER
    embed = _EmbedBuilder(f"{card.code} · {card.system.label}", budget=budget, color=color)
    # Each section gets at most a share of the budget, so a card with 40 attributes or
    # 400 children still shows its hierarchy, children and notes rather than one of them.
    budget = embed.budget
    room = max(80, budget * 15 // 100)
    status = billing_status(card)
    # Cut the title, not the finished text, so the bold markers and status line survive.
    description = f"**{cut(_safe_title(card.title), room - len(status) - 6)}**\n{status}"
    short_title = distinct_short_title(card)
    if short_title:
        description += f"\nShort: {_safe_title(short_title)}"
    embed.description(cut(description, room))
    if card.team_note:
        author = f" — {escape_user_text(card.team_note_author)}" if card.team_note_author else ""
        embed.add_field(
            "Team note", escape_user_text(card.team_note) + author, cap=budget * 10 // 100
        )
    if card.parents:
        embed.add_lines_field(
            "Hierarchy",
            [f"`{p.code}` {_safe_title(p.title)}" for p in card.parents],
            cap=budget * 10 // 100,
        )
    attribute_room = budget * 20 // 100
    per_attribute = max(60, attribute_room // max(1, len(card.attributes)))
    for label, value in card.attributes:
        if attribute_room <= 0:
            break
        before = embed.used
        embed.add_field(
            label,
            _safe_title(value),
            inline=len(value) <= 40,
            cap=min(per_attribute, attribute_room),
        )
        attribute_room -= embed.used - before
    if card.children:
        total = children_count(card)
        lines = [
            f"`{c.code}` {_safe_title(c.title)}{'' if c.billable else ' (header)'}"
            for c in card.children[:MAX_CHILDREN_LINES]
        ]
        if full:
            lines = [
                f"`{c.code}` {_safe_title(c.title)}{'' if c.billable else ' (header)'}"
                for c in card.children
            ]
            if total > len(lines):
                lines.append(f"{ELLIPSIS} and {total - len(lines)} more below")
            embed.add_split_fields(f"Children ({total})", lines, cap=budget * 50 // 100)
        else:
            embed.add_lines_field(f"Children ({total})", lines, total, cap=budget * 25 // 100)
    notes = ordered_notes(card)
    coding = coding_lines(card.coding, full=full)
    # a full card's notes leave room for the coding facts that follow them
    coding_room = sum(len(label) + len(value) + 10 for label, value in coding)
    for index, (key, values) in enumerate(notes):
        label = note_label(key)
        # Share what is left between the remaining notes (keeping room for the dates).
        share = (embed.remaining - 80) // (len(notes) - index)
        bullets = [f"• {_safe_title(v)}" for v in values]
        if full:  # most decisive first, each takes what it needs (the card fits 6,000)
            embed.add_split_fields(label, bullets, cap=embed.remaining - 40 - coding_room)
        else:
            embed.add_lines_field(label, bullets, cap=share)
    if coding:  # MS-DRG, MCE, HCC, POA, ICD-9: its own labelled block
        embed.add_lines_field(
            "Coding",
            [f"**{label}:** {_safe_title(value)}" for label, value in coding],
            cap=max(0, embed.remaining - 80),
        )
    dates = [f"{name} {value}" for name, value in card.effective.items() if value]
    if dates:
        embed.add_field("Dates", ", ".join(dates))
    if card.history:  # across releases: "new in FY2027", "billable until FY2026"…
        embed.add_field("History", cut("; ".join(card.history), 600))
    return embed.build()


def _not_found_embed(item: NotFound, budget: int) -> dict[str, Any]:
    embed = _EmbedBuilder(
        escape_user_text(item.query) or "Not found", budget=budget, color=COLOR_WARN
    )
    embed.description(escape_user_text(item.message))
    if item.suggestions:
        embed.add_lines_field(
            "Did you mean",
            [f"`{s.code}` {_safe_title(s.title)} · {s.system.label}" for s in item.suggestions],
        )
    return embed.build()


def _cpt_embed(item: CptInfo, budget: int) -> dict[str, Any]:
    embed = _EmbedBuilder(f"{item.code} · CPT®", budget=budget, color=COLOR_INFO)
    embed.description(render_cpt_info(item))
    return embed.build()


def _item_embed(item: ReplyItem, budget: int, full: bool = False) -> dict[str, Any]:
    if isinstance(item, CodeCard):
        return _card_embed(item, budget, full)
    if isinstance(item, NotFound):
        return _not_found_embed(item, budget)
    if isinstance(item, CptInfo):
        return _cpt_embed(item, budget)
    embed = _EmbedBuilder(item.code, budget=budget, color=COLOR_INFO)
    embed.description(_safe_title(item.title))
    return embed.build()


def _search_embed(reply: Reply) -> dict[str, Any]:
    query = escape_user_text(reply.text)
    hits = [item for item in reply.items if isinstance(item, SearchHit)]
    title = f"Codes matching “{query}”" if hits else f"No codes match “{query}”"
    embed = _EmbedBuilder(title, budget=EMBED_TOTAL_MAX - 200, color=COLOR_INFO)
    if not hits:
        embed.description("Try other words, a code, or `/code search icd10cm WORDS`.")
        return embed.build()
    lines = [
        f"**{n}.** `{h.code}` {_safe_title(h.title)}{'' if h.billable else ' (header)'}"
        f" · {h.system.label}"
        for n, h in enumerate(hits, start=1)
    ]
    text = ""
    for line in lines:
        if len(text) + len(line) + 1 > EMBED_DESCRIPTION_MAX - 40:
            break
        text += line + "\n"
    embed.description(text.rstrip())
    return embed.build()


def _text_embed(reply: Reply) -> dict[str, Any]:
    color = {
        ReplyKind.EXHAUSTED: COLOR_WARN,
        ReplyKind.INVALID: COLOR_WARN,
        ReplyKind.ERROR: COLOR_ERROR,
    }.get(reply.kind, COLOR_INFO)
    title = reply.title or {
        ReplyKind.EXHAUSTED: "No code lookups left",
        ReplyKind.INVALID: "Invalid request",
        ReplyKind.ERROR: "Error",
    }.get(reply.kind, "codebot")
    embed = _EmbedBuilder(neutralise_mentions(title), budget=EMBED_TOTAL_MAX - 200, color=color)
    embed.description(neutralise_mentions(escape_spans(reply.text, reply.user_text)) or title)
    return embed.build()


def escape_spans(text: str, spans: Sequence[str]) -> str:
    """`text` with every occurrence of the user-typed `spans` escaped like notes, in one
    pass (longest first), so a display name or note cannot become a masked link, header or
    mention while the rest of the text keeps its markdown. Escaping a span only adds
    backslashes, so an occurrence that happens to be our own text stays readable."""
    wanted = sorted({span for span in spans if span and escape_user_text(span) != span}, key=len)
    if not wanted:
        return text
    pattern = re.compile("|".join(re.escape(span) for span in reversed(wanted)))
    return pattern.sub(lambda match: escape_user_text(match.group(0)), text)


def _action_buttons(actions: Iterable[Action]) -> list[ButtonSpec]:
    buttons: list[ButtonSpec] = []
    seen: set[str] = set()
    for action in actions:
        if action.kind not in BUTTON_ACTIONS:
            continue
        custom_id = RUN_PREFIX + action.value
        if len(custom_id) > CUSTOM_ID_MAX or custom_id in seen:
            # cannot encode it, or a button already does the same (Discord refuses two
            # components with one custom_id); the user can still type the command
            continue
        seen.add(custom_id)
        buttons.append(ButtonSpec(custom_id, cut(action.label, BUTTON_LABEL_MAX)))
    return buttons[: BUTTONS_PER_ROW * (ACTION_ROWS_MAX - 1)]


def _run_buttons(actions: Iterable[Action]) -> list[ButtonSpec]:
    """Buttons that run a command text (Full list of `/code changes …`)."""
    return [
        ButtonSpec(RUN_PREFIX + action.value, cut(action.label, BUTTON_LABEL_MAX))
        for action in actions
        if action.kind == "run" and len(RUN_PREFIX + action.value) <= CUSTOM_ID_MAX
    ][:BUTTONS_PER_ROW]


def _hit_select(reply: Reply) -> SelectSpec | None:
    options: list[SelectOptionSpec] = []
    seen: set[str] = set()
    titles = {hit.code: hit for hit in reply.items if isinstance(hit, SearchHit)}
    for action in reply.actions:
        if action.kind != "show" or action.value in seen or len(action.value) > SELECT_TEXT_MAX:
            continue
        seen.add(action.value)
        hit = titles.get(action.value)
        label = f"{action.label} — {hit.title}" if hit else action.label
        options.append(
            SelectOptionSpec(
                label=cut(label, SELECT_TEXT_MAX),
                value=action.value,
                description=cut(hit.system.label, SELECT_TEXT_MAX) if hit else "",
            )
        )
        if len(options) == SELECT_OPTIONS_MAX:
            break
    if not options:
        return None
    return SelectSpec(OPEN_SELECT_ID, "Open a code…", tuple(options))


def render_reply(reply: Reply, *, ephemeral: bool = True) -> DiscordMessage:
    """The Discord message for a reply. `reply.public` overrides `ephemeral` (share)."""
    message = DiscordMessage(ephemeral=ephemeral and not reply.public)
    if reply.kind is ReplyKind.CARDS and reply.items:
        items = list(reply.items)
        shown = items[:EMBEDS_MAX]
        # Leave room for the footer (quota notice) and split the rest evenly, so ten cards
        # still fit the 6,000-character total of one message.
        budget = (EMBED_TOTAL_MAX - 300) // len(shown)
        message.embeds = [_item_embed(item, budget, reply.full) for item in shown]
        if len(items) > len(shown):
            message.content = f"Showing {len(shown)} of {len(items)} results."
        omitted = omitted_line(reply)
        if omitted:
            message.content = cut(
                neutralise_mentions(f"{message.content} {omitted}".strip()), CONTENT_MAX
            )
        message.buttons = _action_buttons(reply.actions)
    elif reply.kind is ReplyKind.SEARCH:
        message.embeds = [_search_embed(reply)]
        message.select = _hit_select(reply)
    else:
        message.embeds = [_text_embed(reply)]
        message.buttons = _run_buttons(reply.actions)
    if reply.notice and message.embeds:
        last = message.embeds[-1]
        room = EMBED_TOTAL_MAX - embeds_size(message.embeds)
        last["footer"] = {"text": cut(neutralise_mentions(reply.notice), min(FOOTER_MAX, room))}
    return message


def error_message(text: str) -> DiscordMessage:
    """A short ephemeral notice, e.g. when sending the real answer failed."""
    return DiscordMessage(
        embeds=[
            {
                "type": "rich",
                "title": "codebot",
                "description": cut(text, 1000),
                "color": COLOR_ERROR,
            }
        ]
    )


# ---------------------------------------------------------------- validation


def embeds_size(embeds: Sequence[dict[str, Any]]) -> int:
    """Characters Discord counts towards the 6,000 total: titles, descriptions, fields,
    footers and author names."""
    total = 0
    for embed in embeds:
        total += len(embed.get("title") or "") + len(embed.get("description") or "")
        total += len((embed.get("footer") or {}).get("text") or "")
        total += len((embed.get("author") or {}).get("name") or "")
        for item in embed.get("fields") or []:
            total += len(item.get("name") or "") + len(item.get("value") or "")
    return total


def validate_message(payload: dict[str, Any]) -> list[str]:
    """Every Discord limit and safety rule this message payload breaks (empty when fine).

    Accepts a message payload (as sent to channel messages, webhooks/follow-ups, or the
    `data` of an interaction callback). Checks content, embeds, components and that
    `allowed_mentions` parses nothing.
    """
    problems: list[str] = []
    content = payload.get("content") or ""
    if len(content) > CONTENT_MAX:
        problems.append(f"content is {len(content)} > {CONTENT_MAX}")
    if "@everyone" in content or "@here" in content:
        problems.append("content contains a live mass mention")
    mentions = payload.get("allowed_mentions")
    if (
        not isinstance(mentions, dict)
        or mentions.get("parse") != []
        or any(mentions.get(key) for key in ("users", "roles", "replied_user"))
    ):
        problems.append(f"allowed_mentions must parse nothing, got {mentions!r}")
    embeds = payload.get("embeds") or []
    if len(embeds) > EMBEDS_MAX:
        problems.append(f"{len(embeds)} embeds > {EMBEDS_MAX}")
    for number, embed in enumerate(embeds):
        problems.extend(f"embed {number}: {p}" for p in _embed_problems(embed))
    if embeds_size(embeds) > EMBED_TOTAL_MAX:
        problems.append(f"embeds total {embeds_size(embeds)} > {EMBED_TOTAL_MAX}")
    problems.extend(_component_problems(payload.get("components") or []))
    return problems


def _embed_problems(embed: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    checks = [
        ("title", embed.get("title") or "", EMBED_TITLE_MAX),
        ("description", embed.get("description") or "", EMBED_DESCRIPTION_MAX),
        ("footer", (embed.get("footer") or {}).get("text") or "", FOOTER_MAX),
        ("author", (embed.get("author") or {}).get("name") or "", AUTHOR_NAME_MAX),
    ]
    fields = embed.get("fields") or []
    if len(fields) > EMBED_FIELDS_MAX:
        problems.append(f"{len(fields)} fields > {EMBED_FIELDS_MAX}")
    for number, item in enumerate(fields):
        checks.append((f"field {number} name", item.get("name") or "", FIELD_NAME_MAX))
        checks.append((f"field {number} value", item.get("value") or "", FIELD_VALUE_MAX))
        if not item.get("name") or not item.get("value"):
            problems.append(f"field {number} has an empty name or value")
    for label, text, limit in checks:
        if len(text) > limit:
            problems.append(f"{label} is {len(text)} > {limit}")
        if re.search(r"@(everyone|here)", text):
            problems.append(f"{label} contains a live mass mention")
    return problems


def _component_problems(rows: list[dict[str, Any]]) -> list[str]:
    problems: list[str] = []
    if len(rows) > ACTION_ROWS_MAX:
        problems.append(f"{len(rows)} action rows > {ACTION_ROWS_MAX}")
    ids: set[str] = set()
    for row in rows:
        children = row.get("components") or []
        if len(children) > BUTTONS_PER_ROW:
            problems.append(f"a row has {len(children)} components > {BUTTONS_PER_ROW}")
        for child in children:
            custom_id = child.get("custom_id")
            if custom_id is not None:
                if len(custom_id) > CUSTOM_ID_MAX:
                    problems.append(f"custom_id {custom_id[:20]!r}… > {CUSTOM_ID_MAX}")
                if custom_id in ids:
                    problems.append(f"duplicate custom_id {custom_id!r}")
                ids.add(custom_id)
            if child.get("type") == 2 and len(child.get("label") or "") > BUTTON_LABEL_MAX:
                problems.append(f"button label > {BUTTON_LABEL_MAX}")
            if child.get("type") == 3:
                options = child.get("options") or []
                if not 1 <= len(options) <= SELECT_OPTIONS_MAX:
                    problems.append(f"select has {len(options)} options")
                values = [o.get("value") for o in options]
                if len(set(values)) != len(values):
                    problems.append("select option values repeat")
                for option in options:
                    for key in ("label", "value", "description"):
                        if len(option.get(key) or "") > SELECT_TEXT_MAX:
                            problems.append(f"select option {key} > {SELECT_TEXT_MAX}")
                if len(child.get("placeholder") or "") > SELECT_PLACEHOLDER_MAX:
                    problems.append("select placeholder too long")
    return problems


def validate_choices(choices: Sequence[dict[str, Any]]) -> list[str]:
    """Problems with an autocomplete answer: ≤ 25 choices, name and value ≤ 100 chars."""
    problems: list[str] = []
    if len(choices) > CHOICES_MAX:
        problems.append(f"{len(choices)} choices > {CHOICES_MAX}")
    for choice in choices:
        for key in ("name", "value"):
            text = str(choice.get(key, ""))
            if not 1 <= len(text) <= CHOICE_TEXT_MAX:
                problems.append(f"choice {key} length {len(text)} not in 1..{CHOICE_TEXT_MAX}")
    return problems
