"""Reply -> Slack Block Kit message (blocks + fallback text), and a checker for Slack's limits.

Everything shown to users goes through `escape`: Slack parses `<…>` sequences in message
text as mentions and links, so a user typing `<!channel>` into a team note must not be able
to ping a whole channel through the bot. `validate_blocks` enforces Slack's documented
Block Kit limits (and the no-live-mention rule); the tests run it on every payload sent.

This module only builds dictionaries: it imports nothing from slack_sdk or slack_bolt.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.model import (
    Action,
    CodeCard,
    CodeRef,
    CptInfo,
    NotFound,
    Reply,
    ReplyKind,
    SearchHit,
)
from bot.render import (
    SENTENCE_NOTE_KINDS,
    billing_status,
    children_count,
    distinct_short_title,
    note_label,
    omitted_line,
    ordered_notes,
    render_cpt_info,
    render_text,
)
from bot.render_knowledge import coding_lines

# ---------------------------------------------------------------- Slack's limits
# https://docs.slack.dev/reference/block-kit/blocks (and the element/composition pages)
MAX_BLOCKS = 50
MAX_TEXT = 3000  # section text, context text element, any text object
MAX_HEADER = 150
MAX_FIELDS = 10
MAX_FIELD = 2000
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_ACTIONS_ELEMENTS = 25
MAX_FALLBACK = 4000  # Slack truncates message text at 40k; we keep notifications short

# ---------------------------------------------------------------- our layout budgets
CHILDREN_SHOWN = 15
NOTE_ITEMS_SHOWN = 4
NOTE_ITEM_CHARS = 220
FIELD_VALUE_CHARS = 300  # a fact in the fields grid is a short value, not a paragraph
SECTION_BUDGET = 2900  # stay clear of MAX_TEXT after adding "… and N more"
SHARE_BUTTON_STYLE = "primary"

ACTION_PREFIX = "codebot_"  # every action_id we emit starts with this; the app routes on it

_MASS_MENTION = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_LIVE_MENTION = re.compile(r"<[!@#]")
_ZERO_WIDTH_SPACE = "\u200b"


class BlockKitError(ValueError):
    """A payload breaks one of Slack's Block Kit limits (the message lists every problem)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


# ---------------------------------------------------------------- text helpers


def escape(text: str) -> str:
    """Escape text for Slack mrkdwn/plain text so nothing in it becomes a mention or link.

    `&`, `<`, `>` become entities (Slack's control characters), and a literal `@channel`,
    `@here` or `@everyone` gets a zero-width space after the `@`, so that even a client or
    API option that auto-links names cannot turn it into a mass ping.
    """
    # ~25 calls per card, nearly all on text with nothing to escape: test before rewriting
    if "&" in text or "<" in text or ">" in text:
        text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "@" in text:
        text = _MASS_MENTION.sub(_defuse_mention, text)
    return text


def _defuse_mention(match: re.Match[str]) -> str:
    return "@" + _ZERO_WIDTH_SPACE + match.group(1)


def truncate(text: str, limit: int) -> str:
    """Cut text to `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 1, 0)].rstrip() + "…"


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack must not auto-link URLs, channel names or mentions in our text
    return {"type": "mrkdwn", "text": truncate(text, MAX_TEXT), "verbatim": True}


def _plain(text: str, limit: int = MAX_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text)]}


def _button(label: str, action_id: str, value: str, style: str = "") -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(label or value, MAX_BUTTON_TEXT),
        "action_id": action_id[:MAX_ACTION_ID],
        "value": value[:MAX_BUTTON_VALUE],
    }
    if style:
        button["style"] = style
    return button


def _lines_within(
    lines: Sequence[str], budget: int, total: int | None = None, max_lines: int | None = None
) -> list[str]:
    """As many lines as fit `budget` characters (and `max_lines`), plus "… and N more"."""
    total = len(lines) if total is None else max(total, len(lines))
    kept: list[str] = []
    used = 0
    for line in lines:
        if max_lines is not None and len(kept) >= max_lines:
            break
        if used + len(line) + 1 > budget - 40:  # keep room for the "and N more" line
            break
        kept.append(line)
        used += len(line) + 1
    if total > len(kept):
        kept.append(f"… and {total - len(kept)} more")
    return kept


# ---------------------------------------------------------------- cards


def _ref_line(ref: CodeRef) -> str:
    flag = "" if ref.billable else " _(header)_"
    return f"• `{escape(ref.code)}` {escape(ref.title)}{flag}"


def _status_line(card: CodeCard) -> str:
    status = billing_status(card)
    if card.status == "terminated":
        return f":no_entry: *{escape(status)}*"
    if status == "billable":
        return ":white_check_mark: Billable"
    return f":information_source: {escape(status.capitalize())}"


def _card_header(card: CodeCard) -> dict[str, Any]:
    # plain_text is never parsed for mentions; codes and system labels come from our data
    return {"type": "header", "text": _plain(f"{card.code} · {card.system.label}", MAX_HEADER)}


def _card_blocks(card: CodeCard, full: bool = False) -> list[dict[str, Any]]:
    """The card: header, title + status, facts, hierarchy, children, notes, team note.

    `full` (`/code full`, the Full card button) keeps everything: every fact, every child
    loaded and every note line, spread over as many sections as Slack's limits need.
    """
    blocks: list[dict[str, Any]] = [_card_header(card)]
    summary = [f"*{escape(card.title)}*", _status_line(card)]
    short_title = distinct_short_title(card)
    if short_title:
        summary.append(f"Short title: {escape(short_title)}")
    if card.history:  # across releases: "new in FY2027", "billable until FY2026"…
        summary.append(f"_History: {escape(truncate('; '.join(card.history), 600))}_")
    blocks.append(_section("\n".join(summary)))

    facts = [(label, value) for label, value in card.attributes if value]
    facts.extend((name.capitalize(), value) for name, value in card.effective.items() if value)
    value_chars = MAX_FIELD - 200 if full else FIELD_VALUE_CHARS
    groups = range(0, len(facts), MAX_FIELDS) if full else range(0, min(len(facts), 1))
    for start in groups:
        fields = [
            _mrkdwn_field(f"*{escape(label)}*\n{escape(truncate(value, value_chars))}")
            for label, value in facts[start : start + MAX_FIELDS]
        ]
        blocks.append({"type": "section", "fields": fields})

    if card.parents:
        path = " › ".join(f"{escape(p.code)} {escape(p.title)}" for p in card.parents)
        blocks.append(_context(truncate(path, SECTION_BUDGET)))

    if card.children:
        total = children_count(card)
        heading = f"*Codes under {escape(card.code)}* ({total})"
        child_lines = [_ref_line(child) for child in card.children]
        if full:
            if total > len(child_lines):
                child_lines.append(f"… and {total - len(child_lines)} more below")
            blocks.extend(_section(text) for text in _chunks([heading, *child_lines]))
        else:
            lines = _lines_within(
                child_lines, SECTION_BUDGET, total=total, max_lines=CHILDREN_SHOWN
            )
            blocks.append(_section("\n".join([heading, *lines])))

    if full:
        blocks.extend(_section(text) for text in _chunks(_full_note_lines(ordered_notes(card))))
    else:
        notes = _notes_text(ordered_notes(card))
        if notes:
            blocks.append(_section(notes))

    coding = coding_lines(card.coding, full=full)
    if coding:  # MS-DRG, MCE, HCC, POA, ICD-9: its own labelled block
        coding_text = [f"*{escape(label)}:* {escape(value)}" for label, value in coding]
        if full:
            blocks.extend(_section(text) for text in _chunks(coding_text))
        else:
            blocks.append(_section(truncate("\n".join(coding_text), SECTION_BUDGET)))

    if card.team_note:
        author = f" ({escape(card.team_note_author)})" if card.team_note_author else ""
        note = truncate(escape(card.team_note), SECTION_BUDGET - 100)
        blocks.append(_section(f":memo: *Team note*{author}: {note}"))
    return blocks


def _full_note_lines(notes: Sequence[tuple[str, Sequence[str]]]) -> list[str]:
    """Every note line: a bold label per kind, then one bullet per item or sentence."""
    lines: list[str] = []
    for key, values in notes:
        lines.append(f"*{escape(note_label(key))}*")
        lines.extend(f"• {escape(truncate(value, SECTION_BUDGET - 10))}" for value in values)
    return lines


def _chunks(lines: Sequence[str]) -> list[str]:
    """Lines packed into texts of at most SECTION_BUDGET characters (never split a line)."""
    chunks: list[str] = []
    current = ""
    for line in lines:
        if current and len(current) + 1 + len(line) > SECTION_BUDGET:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    return chunks


def _mrkdwn_field(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, MAX_FIELD), "verbatim": True}


def _notes_text(notes: Sequence[tuple[str, Sequence[str]]]) -> str:
    """Notes in compact form: one line per note type, a few items each, then "… and N more".

    `notes` come in `bot.render.NOTE_ORDER`; a sentence kind ("Use additional code to …")
    shows its sentences without a label, since each starts with its own verb.
    """
    lines: list[str] = []
    used = 0
    skipped_types = 0
    for key, values in notes:
        if not values:
            continue
        label = note_label(key)
        shown = [escape(truncate(value, NOTE_ITEM_CHARS)) for value in values[:NOTE_ITEMS_SHOWN]]
        more = len(values) - len(shown)
        tail = f"; … and {more} more" if more else ""
        if key in SENTENCE_NOTE_KINDS:
            line = "\n".join(f"• {sentence}" for sentence in shown) + tail
        else:
            line = f"*{escape(label)}:* " + "; ".join(shown) + tail
        if used + len(line) + 1 > SECTION_BUDGET - 60:
            skipped_types += 1
            continue
        lines.append(line)
        used += len(line) + 1
    if skipped_types:
        lines.append(f"… and {skipped_types} more notes")
    return "\n".join(lines)


def _compact_card(card: CodeCard) -> dict[str, Any]:
    """One block for a card when the message has no room for the full layout."""
    return _section(
        f"*{escape(card.code)}* · {escape(card.system.label)} · {escape(billing_status(card))}\n"
        f"{escape(card.title)}"
    )


def _item_blocks(
    item: CodeCard | NotFound | CptInfo | SearchHit, full: bool = False
) -> list[dict[str, Any]]:
    if isinstance(item, CodeCard):
        return _card_blocks(item, full)
    if isinstance(item, NotFound):
        lines = [f":grey_question: {escape(item.message)}"]
        if item.suggestions:
            lines.append("Did you mean:")
            lines.extend(_ref_line(ref) for ref in item.suggestions[:10])
        return [_section(truncate("\n".join(lines), SECTION_BUDGET))]
    if isinstance(item, CptInfo):
        return [_section(escape(render_cpt_info(item)))]
    return [_section(f"*{escape(item.code)}* {escape(item.title)}")]


def _cards_blocks(reply: Reply, budget: int) -> list[dict[str, Any]]:
    """Full cards while they fit the block budget, compact ones after that."""
    blocks: list[dict[str, Any]] = []
    items = list(reply.items)
    for index, item in enumerate(items):
        remaining_after = len(items) - index - 1
        laid_out = _item_blocks(item, reply.full)
        separator = [{"type": "divider"}] if blocks else []
        # each later item needs at least a divider and one block
        if len(blocks) + len(separator) + len(laid_out) + 2 * remaining_after <= budget:
            blocks.extend(separator + laid_out)
            continue
        if reply.full and isinstance(item, CodeCard):
            laid_out = _card_blocks(item)  # a full card with no room left: the short layout
            if len(blocks) + len(separator) + len(laid_out) + 2 * remaining_after <= budget:
                blocks.extend(separator + laid_out)
                continue
        compact = _compact_card(item) if isinstance(item, CodeCard) else laid_out[0]
        if len(blocks) + len(separator) + 1 + 2 * remaining_after <= budget:
            blocks.extend([*separator, compact])
            continue
        blocks.append(_section(f"… and {len(items) - index} more"))
        break
    return blocks


# ---------------------------------------------------------------- search


def _search_blocks(reply: Reply, show_actions: dict[str, Action]) -> list[dict[str, Any]]:
    hits = [item for item in reply.items if isinstance(item, SearchHit)]
    query = escape(truncate(reply.text, 100))
    if not hits:
        return [_section(f"No codes match “{query}”. Try other words or a code.")]
    blocks = [_section(f"*{escape(reply.title) if reply.title else 'Codes matching ' + query}*")]
    for number, hit in enumerate(hits[: MAX_BLOCKS - 5], start=1):
        flag = " _(header)_" if not hit.billable else ""
        block = _section(
            f"{number}. *{escape(hit.code)}* {escape(truncate(hit.title, 400))}{flag}"
            f"  _{escape(hit.system.label)}_"
        )
        action = show_actions.pop(hit.code, None)
        value = action.value if action else hit.code
        block["accessory"] = _button("Show", f"{ACTION_PREFIX}show_{number}", value)
        blocks.append(block)
    return blocks


# ---------------------------------------------------------------- text kinds


def _text_blocks(reply: Reply, budget: int) -> list[dict[str, Any]]:
    """INFO/INVALID/ERROR/EXHAUSTED: the text in as many sections as it needs."""
    icon = {
        ReplyKind.EXHAUSTED: ":hourglass: ",
        ReplyKind.INVALID: ":warning: ",
        ReplyKind.ERROR: ":x: ",
    }.get(reply.kind, "")
    text = escape(reply.text or reply.title or "Done.")
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = truncate(line, SECTION_BUDGET)
        if current and len(current) + len(line) + 1 > SECTION_BUDGET:
            chunks.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        chunks.append(current)
    if len(chunks) > budget:
        chunks = [*chunks[: budget - 1], f"… and {len(chunks) - budget + 1} more parts"]
    if chunks:
        chunks[0] = icon + chunks[0]
    return [_section(chunk) for chunk in chunks]


# ---------------------------------------------------------------- the message


def fallback_text(reply: Reply) -> str:
    """The message's `text`: notifications, screen readers and clients without blocks."""
    return truncate(escape(render_text(reply)), MAX_FALLBACK) or "codebot"


def reply_to_message(reply: Reply) -> dict[str, Any]:
    """Turn a Reply into `{"text": …, "blocks": […]}` within Slack's Block Kit limits."""
    # "run" actions (Full list) are plain buttons whose value is the command to run
    show_actions = {a.value: a for a in reply.actions if a.kind in ("show", "run")}
    trailer: list[dict[str, Any]] = []
    if reply.notice:
        trailer.append(_context(f":bar_chart: {escape(reply.notice)}"))
    buttons = [
        _button(
            action.label or f"Share {action.value}",
            f"{ACTION_PREFIX}share_{index}",
            action.value,
            SHARE_BUTTON_STYLE,
        )
        for index, action in enumerate(a for a in reply.actions if a.kind == "share")
    ]
    buttons.extend(
        _button(action.label, f"{ACTION_PREFIX}full_{index}", action.value)
        for index, action in enumerate(a for a in reply.actions if a.kind == "full")
    )
    budget = MAX_BLOCKS - len(trailer) - 1  # one for the buttons row
    if reply.kind is ReplyKind.CARDS:
        omitted = omitted_line(reply)
        if omitted:
            trailer.insert(0, _context(escape(omitted)))
            budget -= 1
        body = _cards_blocks(reply, budget)
    elif reply.kind is ReplyKind.SEARCH:
        body = _search_blocks(reply, show_actions)
    else:
        body = _text_blocks(reply, budget)
    # "show" actions that did not belong to a search hit become plain buttons
    buttons.extend(
        _button(action.label, f"{ACTION_PREFIX}show_x{index}", action.value)
        for index, action in enumerate(show_actions.values())
    )
    if buttons:
        trailer.append({"type": "actions", "elements": buttons[:MAX_ACTIONS_ELEMENTS]})
    blocks = [*body, *trailer][:MAX_BLOCKS]
    return {"text": fallback_text(reply), "blocks": blocks}


def error_message(text: str) -> dict[str, Any]:
    """A short message from the adapter itself (API trouble), in the same payload shape."""
    return {"text": escape(text), "blocks": [_section(f":warning: {escape(text)}")]}


# ---------------------------------------------------------------- validation


def block_kit_problems(payload: Mapping[str, Any]) -> list[str]:
    """Every way `payload` ({"text", "blocks", …}) breaks Slack's limits or leaks a mention."""
    problems: list[str] = []
    text = payload.get("text")
    blocks = payload.get("blocks")
    if not isinstance(text, str) or not text.strip():
        problems.append("fallback text is missing")
    elif len(text) > MAX_FALLBACK:
        problems.append(f"fallback text is {len(text)} chars (max {MAX_FALLBACK})")
    if blocks is not None:
        if not isinstance(blocks, list):
            return [*problems, "blocks is not a list"]
        if len(blocks) > MAX_BLOCKS:
            problems.append(f"{len(blocks)} blocks (max {MAX_BLOCKS})")
        block_ids: set[str] = set()
        action_ids: set[str] = set()
        for index, block in enumerate(blocks):
            problems.extend(_block_problems(f"blocks[{index}]", block, block_ids, action_ids))
    problems.extend(
        f"live mention or link syntax in {where}: {value[:60]!r}"
        for where, value in _strings(payload, "payload")
        if _LIVE_MENTION.search(value)
    )
    problems.extend(
        f"mass mention in {where}"
        for where, value in _strings(payload, "payload")
        if _MASS_MENTION.search(value)
    )
    return problems


def validate_blocks(payload: Mapping[str, Any]) -> None:
    """Raise `BlockKitError` listing every problem when `payload` breaks Slack's limits."""
    problems = block_kit_problems(payload)
    if problems:
        raise BlockKitError(problems)


def _strings(value: Any, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{where}[{index}]")


def _text_object_problems(where: str, obj: Any, limit: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, Mapping):
        return [f"{where} is not a text object"]
    kind = obj.get("type")
    if kind not in ("plain_text", "mrkdwn") or (plain_only and kind != "plain_text"):
        return [f"{where} has text type {kind!r}"]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        return [f"{where} is empty"]
    if len(text) > limit:
        return [f"{where} is {len(text)} chars (max {limit})"]
    return []


def _element_problems(where: str, element: Any, action_ids: set[str]) -> list[str]:
    if not isinstance(element, Mapping):
        return [f"{where} is not an object"]
    if element.get("type") != "button":
        return [f"{where} has unexpected element type {element.get('type')!r}"]
    problems = _text_object_problems(f"{where}.text", element.get("text"), MAX_BUTTON_TEXT, True)
    action_id = element.get("action_id", "")
    if not isinstance(action_id, str) or not action_id or len(action_id) > MAX_ACTION_ID:
        problems.append(f"{where}.action_id missing or longer than {MAX_ACTION_ID}")
    elif action_id in action_ids:
        problems.append(f"{where}.action_id {action_id!r} is not unique")
    else:
        action_ids.add(action_id)
    value = element.get("value", "")
    if not isinstance(value, str) or len(value) > MAX_BUTTON_VALUE:
        problems.append(f"{where}.value longer than {MAX_BUTTON_VALUE}")
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or len(url) > MAX_URL):
        problems.append(f"{where}.url longer than {MAX_URL}")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(f"{where}.style is not primary/danger")
    return problems


def _block_problems(where: str, block: Any, block_ids: set[str], action_ids: set[str]) -> list[str]:
    if not isinstance(block, Mapping):
        return [f"{where} is not an object"]
    problems: list[str] = []
    block_id = block.get("block_id")
    if block_id is not None:
        if not isinstance(block_id, str) or len(block_id) > MAX_BLOCK_ID:
            problems.append(f"{where}.block_id longer than {MAX_BLOCK_ID}")
        elif block_id in block_ids:
            problems.append(f"{where}.block_id {block_id!r} is not unique")
        else:
            block_ids.add(block_id)
    kind = block.get("type")
    if kind == "header":
        problems += _text_object_problems(f"{where}.text", block.get("text"), MAX_HEADER, True)
    elif kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            problems.append(f"{where} has neither text nor fields")
        if text is not None:
            problems += _text_object_problems(f"{where}.text", text, MAX_TEXT)
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
                problems.append(f"{where}.fields has more than {MAX_FIELDS} items")
            else:
                for index, field in enumerate(fields):
                    problems += _text_object_problems(f"{where}.fields[{index}]", field, MAX_FIELD)
        if block.get("accessory") is not None:
            problems += _element_problems(f"{where}.accessory", block["accessory"], action_ids)
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
            problems.append(f"{where}.elements must hold 1..{MAX_CONTEXT_ELEMENTS} items")
        else:
            for index, element in enumerate(elements):
                problems += _text_object_problems(f"{where}.elements[{index}]", element, MAX_TEXT)
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= MAX_ACTIONS_ELEMENTS:
            problems.append(f"{where}.elements must hold 1..{MAX_ACTIONS_ELEMENTS} items")
        else:
            for index, element in enumerate(elements):
                problems += _element_problems(f"{where}.elements[{index}]", element, action_ids)
    elif kind != "divider":
        problems.append(f"{where} has unexpected block type {kind!r}")
    return problems
