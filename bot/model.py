"""The platform-neutral model: what adapters send in (Request) and get back (Reply).

Adapters translate Slack/Discord/console events into a `Request`, call
`LookupService.handle`, and translate the `Reply` into their own format. Nothing in
here knows about any chat platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.knowledge_model import CodingFacts


class CodeSystem(StrEnum):
    """The code sets codebot knows. Values are the names users type (`/code search icd10cm …`)."""

    ICD10CM = "icd10cm"
    ICD10PCS = "icd10pcs"
    HCPCS = "hcpcs"
    CPT = "cpt"

    @property
    def label(self) -> str:
        """Human name of the code set, as shown on cards."""
        return _SYSTEM_LABELS[self]


_SYSTEM_LABELS = {
    CodeSystem.ICD10CM: "ICD-10-CM",
    CodeSystem.ICD10PCS: "ICD-10-PCS",
    CodeSystem.HCPCS: "HCPCS Level II",
    CodeSystem.CPT: "CPT®",
}


@dataclass(frozen=True)
class UserRef:
    """Who asked. `tenant_id` is the Slack team id / Discord guild id (a DM uses the user's own)."""

    platform: str
    tenant_id: str
    user_id: str
    display_name: str = ""


@dataclass(frozen=True)
class Request:
    """One chat turn. `request_id` is the platform's event/interaction id, used to charge once."""

    user: UserRef
    text: str
    channel_id: str = ""
    is_admin: bool = False
    request_id: str = ""


# ---------------------------------------------------------------- reply items


@dataclass(frozen=True)
class CodeRef:
    """A code with its title, used for parents, children and suggestions."""

    system: CodeSystem
    code: str
    title: str
    billable: bool = False
    kind: str = ""  # as CodeCard.kind when known ("" when the source did not say)
    status: str = "active"


@dataclass(frozen=True)
class CodeCard:
    """Everything known about one code. `code` is in display form (E11.9, 0DTJ4ZZ, A0425, LT).

    `kind` is one of: chapter, block, category, subcategory, code (ICD-10-CM); section,
    body_system, table, code (ICD-10-PCS); code, modifier (HCPCS); code (CPT).
    `status` is "active", "terminated" (HCPCS), "deleted" (no longer in the release in
    force), "not_valid" (not valid on the asked date, valid before it) or "not_yet_valid".
    `notes` maps a note type (inclusion_terms,
    includes, excludes1, excludes2, code_first, use_additional_code, code_also, notes,
    seven_chr_note, seven_chr_def, processing_note, ...) to lines of text.
    `effective` holds dates as ISO strings (added, effective, terminated) and the release.
    `attributes` holds set-specific facts for display (coverage, PCS axes, BETOS...), as
    ordered (label, value) pairs.
    """

    system: CodeSystem
    code: str
    title: str
    short_title: str = ""
    kind: str = "code"
    billable: bool = True
    status: str = "active"
    parents: tuple[CodeRef, ...] = ()
    children: tuple[CodeRef, ...] = ()
    children_total: int = 0
    notes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    effective: dict[str, str] = field(default_factory=dict)
    attributes: tuple[tuple[str, str], ...] = ()
    source: dict[str, str] = field(default_factory=dict)
    team_note: str = ""
    team_note_author: str = ""
    # Timeline lines across the releases held ("new in FY2027", "title revised FY2027
    # (was: …)", "billable until FY2026") and the date of service the card answers for
    # ("" = today). See bot/codes/dated.py.
    history: tuple[str, ...] = ()
    as_of: str = ""
    coding: CodingFacts | None = None  # MS-DRG, MCE, HCC, POA, ICD-9 (bot.knowledge_model)


@dataclass(frozen=True)
class NotFound:
    """A code-shaped input that is not a valid code, with up to 5 close valid codes."""

    query: str
    message: str
    suggestions: tuple[CodeRef, ...] = ()


@dataclass(frozen=True)
class CptInfo:
    """A CPT-shaped code when no licensed CPT file is loaded: what we may say about it.

    `kind` is "code" or "modifier" (two digits: 25, 59); `see_also` holds public HCPCS
    Level II codes a coder may use instead (59 -> XE, XP, XS, XU).
    """

    code: str
    section: str
    range_label: str
    kind: str = "code"
    see_also: tuple[CodeRef, ...] = ()


@dataclass(frozen=True)
class SearchHit:
    """One search result; `score` is relative, higher is better."""

    system: CodeSystem
    code: str
    title: str
    score: float
    billable: bool = True
    kind: str = ""  # as CodeCard.kind when known
    status: str = "active"
    why: tuple[str, ...] = ()  # with explain: why it matched (words, synonyms, index terms)


class ReplyKind(StrEnum):
    """What kind of answer a Reply is; adapters pick their layout from it."""

    CARDS = "cards"  # items: CodeCard / NotFound / CptInfo
    SEARCH = "search"  # items: SearchHit; text: the query
    INFO = "info"  # text only: help, quota, register, admin, note saved, recent, stats
    EXHAUSTED = "exhausted"  # quota is used up: text says how to get more; no code content
    INVALID = "invalid"  # bad input: text says what was wrong
    ERROR = "error"  # unexpected failure: text carries a short reference id only


@dataclass(frozen=True)
class Action:
    """A button the adapter may show: `share` (post card publicly) or `show` (open a hit)."""

    kind: str
    value: str
    label: str


ReplyItem = CodeCard | NotFound | CptInfo | SearchHit


@dataclass(frozen=True)
class Reply:
    """The neutral answer. `text` is a heading or the whole body for INFO-like kinds.

    `notice` is the quota line (empty when the answer was free). `public` asks the adapter
    to post in channel instead of ephemerally (share). `title` is a short summary line,
    usable as a platform's fallback/notification text. `replayed` is true when this request
    id had already been charged (a platform retry): an adapter that posts answers on its
    own (Slack events) may skip posting it again. `user_text` lists the parts of `text` that
    users typed (display names, note text): an adapter whose markup could bring them to life
    (Discord markdown: masked links, headers) escapes those parts and keeps its own markup.
    `omitted` names what the user asked for and the reply leaves out (more than 10 codes):
    every renderer says so.
    """

    kind: ReplyKind
    items: tuple[ReplyItem, ...] = ()
    text: str = ""
    notice: str = ""
    actions: tuple[Action, ...] = ()
    public: bool = False
    title: str = ""
    replayed: bool = False
    user_text: tuple[str, ...] = ()
    omitted: tuple[str, ...] = ()  # codes asked for but not answered (over the limit)
    full: bool = False  # full cards: every note, child and fact, nothing cut (`/code full`)
