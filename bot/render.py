"""Reply -> plain text, for the console, `codebot ask` and platform fallback text."""

from __future__ import annotations

from bot.codes.normalize import typed_form
from bot.hcpcs_status import hcpcs_status
from bot.model import CodeCard, CptInfo, NotFound, Reply, ReplyItem, ReplyKind, SearchHit
from bot.render_knowledge import coding_lines

NOTE_LABELS = {
    "inclusion_terms": "Inclusion terms",
    "includes": "Includes",
    "excludes1": "Excludes1",
    "excludes2": "Excludes2",
    "code_first": "Code first",
    "use_additional_code": "Use additional code",
    "code_also": "Code also",
    "notes": "Notes",
    "seven_chr_note": "7th character",
    "seven_chr_def": "7th characters",
    "processing_note": "Processing note",
    "manifestation": "Manifestation",
}
MAX_CHILDREN_SHOWN = 20
MAX_NOTE_LINES = 6
# One fixed order of note kinds on every card and platform, most decisive first: what rules
# a code out or must come with it, then the rules of its category, then what it covers.
NOTE_ORDER = (
    "manifestation",
    "excludes1",
    "code_first",
    "use_additional_code",
    "code_also",
    "notes",
    "seven_chr_note",
    "seven_chr_def",
    "excludes2",
    "includes",
    "inclusion_terms",
    "processing_note",
)
_NOTE_RANK = {key: rank for rank, key in enumerate(NOTE_ORDER)}
# Kinds whose lines are whole sentences that start with their own verb ("Code first …").
SENTENCE_NOTE_KINDS = frozenset({"code_first", "use_additional_code", "code_also"})


def render_text(reply: Reply) -> str:
    """The whole reply as plain text, notice last."""
    parts: list[str] = []
    if reply.kind is ReplyKind.SEARCH:
        parts.append(_render_search(reply))
    elif reply.kind is ReplyKind.CARDS:
        parts.extend(render_item(item, full=reply.full) for item in reply.items)
        parts.append(omitted_line(reply))
    elif reply.text:
        parts.append(reply.text)
    if reply.notice:
        parts.append(reply.notice)
    return "\n\n".join(part for part in parts if part)


MAX_OMITTED_NAMED = 20


def omitted_line(reply: Reply) -> str:
    """ "Not answered: E18, E19 …" for codes the reply leaves out ('' when none)."""
    if not reply.omitted:
        return ""
    named = [code[:12] for code in reply.omitted[:MAX_OMITTED_NAMED]]
    more = len(reply.omitted) - len(named)
    tail = f" and {more} more" if more else ""
    return (
        f"Not answered (up to 10 codes per message, not charged): {', '.join(named)}{tail}. "
        "Send them in another message."
    )


def render_item(item: ReplyItem, *, full: bool = False) -> str:
    """One card, not-found notice, CPT notice or search hit as text."""
    if isinstance(item, CodeCard):
        return render_card(item, full=full)
    if isinstance(item, NotFound):
        lines = [item.message]
        lines.extend(
            f"  {ref.code}  {ref.title}{flag_suffix(ref.billable, ref.kind, ref.status)}"
            for ref in item.suggestions
        )
        return "\n".join(lines)
    if isinstance(item, CptInfo):
        return render_cpt_info(item)
    return f"{item.code}  {item.title}"


def billing_status(card: CodeCard) -> str:
    """`billable`, `not billable (category)`, `modifier`, `terminated: last date of
    service 2025-12-31; use J0567`, `active, not payable by Medicare (coverage I)`…"""
    hcpcs = hcpcs_status(card)
    if hcpcs:
        return hcpcs
    if card.status == "terminated":
        ended = card.effective.get("terminated", "")
        return f"TERMINATED {ended}".strip()
    dated = dated_status(card)
    if dated:
        return dated
    if card.kind == "modifier":
        return "modifier"
    if card.billable:
        return "billable"
    return f"not billable ({card.kind.replace('_', ' ')})"


def dated_status(card: CodeCard) -> str:
    """The status of a code not valid on the card's date: `NOT VALID before 2025-10-01`…"""
    if card.status == "not_yet_valid":
        return f"NOT VALID before {card.effective.get('valid_from', '')}".strip()
    if card.status in ("not_valid", "deleted"):
        until = card.effective.get("valid_to", "")
        return f"NOT VALID: deleted, valid through {until}" if until else "NOT VALID: deleted"
    return ""


def release_line(card: CodeCard) -> str:
    """`ICD-10-CM FY2027 (as of 2025-03-01)`: the release the card answers from."""
    release = card.effective.get("release", "")
    if not release:
        return ""
    line = f"{card.system.label} {release}"
    notes_from = card.source.get("notes_release", "")
    if notes_from and notes_from != release and card.notes:
        line += f", notes from the {notes_from} tabular"
    return line + (f" (as of {card.as_of})" if card.as_of else "")


def note_label(key: str) -> str:
    """Display label of a note type: `excludes1` -> `Excludes1`, unknown keys spelled out."""
    return NOTE_LABELS.get(key) or key.replace("_", " ").capitalize()


HEADER_KINDS = frozenset(
    {"chapter", "block", "category", "subcategory", "section", "body_system", "table"}
)


def list_flag(billable: bool, kind: str = "", status: str = "active") -> str:
    """The label of a code in a list (children, search hits, suggestions): "terminated",
    "modifier", or "header" for a real header only (a non-billable category, table …)."""
    if status == "terminated":
        return "terminated"
    if kind == "modifier":
        return "modifier"
    if not billable and (kind in HEADER_KINDS or not kind):
        return "header"
    return ""


def flag_suffix(billable: bool, kind: str = "", status: str = "active") -> str:
    """` (terminated)`, ` (modifier)`, ` (header)` or ''."""
    flag = list_flag(billable, kind, status)
    return f" ({flag})" if flag else ""


def ordered_notes(card: CodeCard) -> list[tuple[str, tuple[str, ...]]]:
    """The card's non-empty notes as (kind, lines) in `NOTE_ORDER`, unknown kinds last."""
    present = [(key, values) for key, values in card.notes.items() if values]
    return sorted(present, key=lambda item: _NOTE_RANK.get(item[0], len(NOTE_ORDER)))


def distinct_short_title(card: CodeCard) -> str:
    """The short title when it says something the title does not (else empty)."""
    if card.short_title and card.short_title.lower() != card.title.lower():
        return card.short_title
    return ""


def children_count(card: CodeCard) -> int:
    """How many children the code has in all (`children` may hold only the first ones)."""
    return max(card.children_total, len(card.children))


def render_card(card: CodeCard, *, full: bool = False) -> str:
    """A code card as text; `full` keeps every child loaded and every note line."""
    children_shown = len(card.children) if full else MAX_CHILDREN_SHOWN
    note_lines = None if full else MAX_NOTE_LINES
    cut = False
    lines = [f"{card.code} · {card.system.label} · {billing_status(card)}", card.title]
    short_title = distinct_short_title(card)
    if short_title:
        lines.append(f"Short: {short_title}")
    if card.parents:
        lines.append("Hierarchy: " + " › ".join(f"{p.code} {p.title}" for p in card.parents))
    for label, value in card.attributes:
        lines.append(f"{label}: {value}")
    if card.children:
        total = children_count(card)
        lines.append(f"Children ({total}):")
        lines.extend(
            f"  {child.code}  {child.title}{flag_suffix(child.billable, child.kind, child.status)}"
            for child in card.children[:children_shown]
        )
        if total > min(children_shown, len(card.children)):
            lines.append(f"  … and {total - min(children_shown, len(card.children))} more")
            cut = cut or children_shown < len(card.children)
    for key, values in ordered_notes(card):
        shown = list(values[:note_lines])
        more = len(values) - len(shown)
        cut = cut or more > 0
        if key in SENTENCE_NOTE_KINDS:
            lines.extend(shown)  # each reads "Use additional code to identify …" already
            if more:
                lines.append(f"… and {more} more {note_label(key).lower()} notes")
            continue
        tail = f"; … and {more} more" if more else ""
        lines.append(f"{note_label(key)}: " + "; ".join(shown) + tail)
    lines.extend(f"{label}: {value}" for label, value in coding_lines(card.coding, full=full))
    dates = [
        f"{name.replace('_', ' ')} {value}"
        for name, value in card.effective.items()
        if value and name != "release"
    ]
    if dates:
        lines.append("Dates: " + ", ".join(dates))
    release = release_line(card)
    if release:
        lines.append("Release: " + release)
    if card.history:
        lines.append("History: " + "; ".join(card.history))
    if card.team_note:
        author = f" ({card.team_note_author})" if card.team_note_author else ""
        lines.append(f"Team note{author}: {card.team_note}")
    if cut:
        lines.append(f"Full card: /code full {typed_form(card.code, card.kind)}")
    return "\n".join(lines)


def render_cpt_info(item: CptInfo) -> str:
    """What we may say about a CPT code without a licensed file."""
    if item.kind == "modifier":
        lines = [
            f"{item.code} is a CPT® modifier (two digits). CPT® modifiers and their "
            "descriptors are licensed by the AMA and no licensed CPT file is loaded. "
            "An admin can load one with `codebot data import-cpt FILE`."
        ]
        if item.see_also:
            lines.append(f"HCPCS Level II modifiers CMS uses for specific cases of {item.code}:")
            lines.extend(f"  {ref.code}  {ref.title}" for ref in item.see_also)
        return "\n".join(lines)
    return (
        f"{item.code} is a CPT® code ({item.section}, {item.range_label}).\n"
        "CPT® descriptors are licensed by the AMA and no licensed CPT file is loaded. "
        "An admin can load one with `codebot data import-cpt FILE`."
    )


def _render_search(reply: Reply) -> str:
    hits = [item for item in reply.items if isinstance(item, SearchHit)]
    if not hits:
        return f"No codes match \u201c{reply.text}\u201d. Try other words or a code."
    lines = [reply.title or f"Codes matching \u201c{reply.text}\u201d:"]
    for number, hit in enumerate(hits, start=1):
        label = hit.system.label
        flag = flag_suffix(hit.billable, hit.kind, hit.status)
        lines.append(f"{number}. {hit.code}  {hit.title}{flag}  [{label}]")
    return "\n".join(lines)
