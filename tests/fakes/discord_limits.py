"""What real Discord refuses in a message body, written independently of the adapter.

Real Discord answers a message that breaks a limit with HTTP 400 and JSON error 50035
("Invalid Form Body"), and the user sees nothing. The fake runs this on every message it
receives (channel messages, interaction callbacks, webhook follow-ups and edits), so an
adapter bug fails the test that triggers it. The limits are Discord's documented ones
(https://discord.com/developers/docs/resources/message,
https://discord.com/developers/docs/interactions/message-components); this module does
not import the adapter's own checker, so a limit the adapter forgot is still caught.
"""

from __future__ import annotations

from typing import Any

INVALID_FORM_BODY = 50035

_EMBED_TEXT_LIMITS = {"title": 256, "description": 4096}
_ROWS = 5
_BUTTONS_PER_ROW = 5
_CUSTOM_ID = 100
_BUTTON_LABEL = 80
_SELECT_OPTIONS = 25
_SELECT_TEXT = 100


def form_errors(body: dict[str, Any]) -> list[str]:
    """Each reason Discord would refuse this message body (empty when it is accepted)."""
    errors: list[str] = []
    content = body.get("content") or ""
    if len(content) > 2000:
        errors.append("content: BASE_TYPE_MAX_LENGTH 2000")
    embeds = body.get("embeds") or []
    if len(embeds) > 10:
        errors.append("embeds: BASE_TYPE_MAX_LENGTH 10")
    total = 0
    for number, embed in enumerate(embeds):
        for key, limit in _EMBED_TEXT_LIMITS.items():
            text = embed.get(key) or ""
            total += len(text)
            if len(text) > limit:
                errors.append(f"embeds.{number}.{key}: BASE_TYPE_MAX_LENGTH {limit}")
        footer = (embed.get("footer") or {}).get("text") or ""
        author = (embed.get("author") or {}).get("name") or ""
        total += len(footer) + len(author)
        if len(footer) > 2048:
            errors.append(f"embeds.{number}.footer.text: BASE_TYPE_MAX_LENGTH 2048")
        if len(author) > 256:
            errors.append(f"embeds.{number}.author.name: BASE_TYPE_MAX_LENGTH 256")
        fields = embed.get("fields") or []
        if len(fields) > 25:
            errors.append(f"embeds.{number}.fields: BASE_TYPE_MAX_LENGTH 25")
        for index, item in enumerate(fields):
            name, value = str(item.get("name") or ""), str(item.get("value") or "")
            total += len(name) + len(value)
            if not name or not value:
                errors.append(f"embeds.{number}.fields.{index}: BASE_TYPE_REQUIRED")
            if len(name) > 256 or len(value) > 1024:
                errors.append(f"embeds.{number}.fields.{index}: BASE_TYPE_MAX_LENGTH")
    if total > 6000:
        errors.append("embeds: MAX_EMBED_SIZE_EXCEEDED 6000")
    errors.extend(_component_errors(body.get("components") or []))
    return errors


def _component_errors(rows: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    if len(rows) > _ROWS:
        errors.append(f"components: BASE_TYPE_MAX_LENGTH {_ROWS}")
    seen: set[str] = set()
    for number, row in enumerate(rows):
        children = row.get("components") or []
        if row.get("type") != 1 or not 1 <= len(children) <= _BUTTONS_PER_ROW:
            errors.append(f"components.{number}: UNION_TYPE_CHOICES / row of 1-5 components")
        if any(child.get("type") == 3 for child in children) and len(children) != 1:
            errors.append(f"components.{number}: a select menu fills its row")
        for index, child in enumerate(children):
            where = f"components.{number}.components.{index}"
            custom_id = child.get("custom_id")
            if child.get("type") == 2 and child.get("style") != 5 and not custom_id:
                errors.append(f"{where}.custom_id: BASE_TYPE_REQUIRED")
            if custom_id is not None:
                if not 1 <= len(custom_id) <= _CUSTOM_ID:
                    errors.append(f"{where}.custom_id: BASE_TYPE_BAD_LENGTH 1-{_CUSTOM_ID}")
                if custom_id in seen:
                    errors.append(f"{where}.custom_id: COMPONENT_CUSTOM_ID_DUPLICATED")
                seen.add(custom_id)
            if len(child.get("label") or "") > _BUTTON_LABEL:
                errors.append(f"{where}.label: BASE_TYPE_MAX_LENGTH {_BUTTON_LABEL}")
            if child.get("type") == 3:
                options = child.get("options") or []
                if not 1 <= len(options) <= _SELECT_OPTIONS:
                    errors.append(f"{where}.options: BASE_TYPE_BAD_LENGTH 1-{_SELECT_OPTIONS}")
                for option in options:
                    if any(len(str(option.get(k) or "")) > _SELECT_TEXT for k in option):
                        errors.append(f"{where}.options: BASE_TYPE_MAX_LENGTH {_SELECT_TEXT}")
    return errors


def invalid_form_body(errors: list[str]) -> dict[str, Any]:
    """The JSON Discord answers with (status 400)."""
    return {"code": INVALID_FORM_BODY, "message": "Invalid Form Body", "errors": errors}
