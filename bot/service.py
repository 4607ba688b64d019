"""LookupService: the whole chat behaviour, platform-neutral. Request in, Reply out.

Order of work for a paid command: compute the answer (read-only, fast), then charge the
quota once for the request id, then attach team data. The answer is computed before the
charge so a failure never costs the user anything, and a charge whose answer then fails
is refunded.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import date

from bot.clock import Clock, utc_today
from bot.codes.knowledge import KnowledgeBase
from bot.commands import Command, CommandKind, clean_text, parse
from bot.knowledge_answers import KnowledgeAnswers
from bot.knowledge_cards import with_coding
from bot.metrics import (
    CHARGES,
    DELIVERY_FAILURES,
    LATENCY,
    REFUNDS,
    REQUESTS,
    STATE_ERRORS,
    platform_label,
)
from bot.model import (
    Action,
    CodeCard,
    CodeRef,
    CodeSystem,
    CptInfo,
    NotFound,
    Reply,
    ReplyItem,
    ReplyKind,
    Request,
    SearchHit,
)
from bot.ports import Accounts, ChargeOutcome, CodeLookup, CodeSearch, LookupRecord, TeamNote
from bot.recently_shown import RecentlyShown
from bot.release_replies import changes_answer, history_answer
from bot.reply_items import card_actions, shown_items
from bot.resolver import CodeResolver
from bot.search_validity import OVERFETCH, valid_first
from bot.spend_guard import SpendGuard

log = logging.getLogger(__name__)

SEARCH_LIMIT = 10
AUTOCOMPLETE_LIMIT = 25

HELP_TEXT = """\
codebot looks up US medical codes: ICD-10-CM, ICD-10-PCS, HCPCS Level II
(and CPT® once an admin loads a licensed file).
• /code E11.9 — look a code up (several at once: /code E11.9 I10 A0425; case and dots don't matter)
• /code full E11.9 — the whole card, every note (free right after the lookup)
• /code E11 — a category: not billable, with its children
• /code -LT or /code modifier LT — HCPCS modifiers
• /code knee brace — search by words (typos are fine)
• /code search icd10cm knee — search one code set (icd10cm, icd10pcs, hcpcs, cpt)
• /code E11.9 on 2025-03-01 — as of a date of service (also dos 2025-03-01, @2025-03-01)
• /code history E11.9 · /code changes icd10cm FY2027 — a code's timeline; what a release changed
• /code drg 291 · /code group I50.20 N17.9 age 70 sex F — an MS-DRG; group a claim (MCE edits too)
• /code 250.00 · /code icd9 V45.81 · /code crosswalk E11.9 — ICD-9-CM and the GEM crosswalks
• /code guidelines sepsis · /code guideline I.C.1.d — the Official Guidelines, quoted
• /code share E11.9 — post a code to the channel
• /code recent · /code stats — the team's recent lookups and usage
• /code note E11.9 TEXT — a team note on a code (/code note E11.9 delete removes it)
• /code quota · /code register — what you have left, and 5 more lookups free
• /code admin grant @user 50 | admin plan @user pro | admin plan team unlimited | admin usage"""


# Commands whose charge row in the ledger is their processed-once record (a replay is
# `replayed`); every other command claims its request id before it runs.
_LEDGER_KINDS = frozenset({CommandKind.LOOKUP, CommandKind.SHARE, CommandKind.SEARCH})
MAX_REMEMBERED_DUPLICATES = 10_000
ALREADY_ANSWERED = "That request was already answered."


def observe(request: Request, reply: Reply, seconds: float, kind: CommandKind | None) -> None:
    """Count one answered request (bounded labels: platform, command kind, reply kind).
    `kind` is the parsed command's (None when the request failed before or in parsing)."""
    platform = platform_label(request.user.platform)
    command = kind.value if kind is not None and reply.kind is not ReplyKind.ERROR else "any"
    outcome = "duplicate" if reply.replayed and not reply.items else reply.kind.value
    REQUESTS.labels(platform, command, outcome).inc()
    LATENCY.labels(platform, command).observe(seconds)
    if reply.kind is ReplyKind.EXHAUSTED:
        CHARGES.labels(platform, "replayed" if reply.replayed else "refused").inc()
    elif reply.notice:
        CHARGES.labels(platform, "replayed" if reply.replayed else "charged").inc()


def _answered_free(command: Command, reply: Reply) -> bool:
    """A lookup or search answered without a charge (not found, no hits, CPT not loaded):
    nothing in the ledger records it, so it claims its id after the (read-only) answer."""
    return (
        command.kind in _LEDGER_KINDS
        and not reply.notice
        and not reply.replayed
        and reply.kind is not ReplyKind.EXHAUSTED
        and reply.kind is not ReplyKind.ERROR
    )


class LookupService:
    """Answers every chat command. Adapters call `handle`; nothing here is platform-specific."""

    def __init__(
        self,
        catalog: CodeLookup,
        search: CodeSearch,
        accounts: Accounts,
        *,
        clock: Clock = utc_today,
        knowledge: KnowledgeBase | None = None,
    ) -> None:
        """`clock` says what day "today" is (the date of service when none is named);
        `knowledge` adds MS-DRG, MCE, HCC, POA and GEM facts to the cards."""
        self._catalog = catalog
        self._search = search
        self._accounts = accounts
        self._resolver = CodeResolver(catalog)
        self._shown = RecentlyShown()  # cards each user just saw: their full card is free
        self._clock = clock
        # request ids answered as duplicates here: their refunds/deliveries are not ours
        self._duplicates: dict[str, None] = {}
        self._spend = SpendGuard(accounts)  # refused users are charged before any search
        self._knowledge = knowledge
        self._answers = KnowledgeAnswers(knowledge, catalog) if knowledge is not None else None

    async def handle(self, request: Request) -> Reply:
        """Answer one request. Never raises: unexpected failures become an ERROR reply."""
        started = time.perf_counter()
        parsed: list[Command] = []  # the command, once parsed: the metrics label it
        reply = await self._handle(request, parsed)
        observe(request, reply, time.perf_counter() - started, parsed[0].kind if parsed else None)
        return reply

    async def _handle(self, request: Request, parsed: list[Command]) -> Reply:
        try:
            command = parse(request.text)
            parsed.append(command)
            if not request.request_id:
                request = replace(request, request_id=f"auto-{uuid.uuid4().hex}")
            elif command.kind not in _LEDGER_KINDS and not await self._claim(request):
                return self._duplicate(request)
            reply = await self._dispatch(request, command)
            if _answered_free(command, reply) and not await self._claim(request):
                return self._duplicate(request)
            return reply
        except Exception as error:
            reference = uuid.uuid4().hex[:8]
            problem = self._storage_problem(error)
            if problem:  # one line, no traceback: the operator must fix the storage
                STATE_ERRORS.inc()
                log.error("request refused: %s (ref %s)", problem, reference)
                return storage_error_reply(problem, reference)
            log.exception("request failed (ref %s, platform %s)", reference, request.user.platform)
            return error_reply(reference)

    def autocomplete(self, prefix: str, limit: int = AUTOCOMPLETE_LIMIT) -> list[CodeRef]:
        """Codes matching a partly typed query; free of quota. Never raises."""
        try:
            # the same normalisation as a command (NFKC: full-width Ｅ１１ is E11)
            text = clean_text(prefix[:400])[:100]
            if not text:
                return []
            # the release in force today: deleted and terminated codes after valid ones
            refs = self._search.autocomplete(text, limit=min(limit * OVERFETCH, 50))
            return valid_first(refs, self._clock(), self._catalog.valid_on, limit)
        except Exception:
            log.exception("autocomplete failed")
            return []

    async def refund(self, request: Request) -> None:
        """Undo the charge of a request whose answer the platform failed to deliver."""
        if request.request_id in self._duplicates:
            return  # the original answer, elsewhere, keeps its charge
        DELIVERY_FAILURES.labels(platform_label(request.user.platform)).inc()
        try:
            await self._accounts.refund(request.user, request.request_id)
            REFUNDS.labels("delivery").inc()
        except Exception:
            log.exception("refund failed (platform %s)", request.user.platform)

    async def delivered(self, request: Request) -> None:
        """The adapter posted the answer: record it (crash refunds spare delivered charges)."""
        if request.request_id in self._duplicates:
            return
        try:
            await self._accounts.delivered(request)
        except Exception:
            log.exception("could not record a delivery (platform %s)", request.user.platform)

    async def refund_undelivered(self) -> int:
        """At start-up: refund charges a crashed process made but never delivered."""
        try:
            refunded = await self._accounts.refund_undelivered()
            REFUNDS.labels("crash").inc(refunded)
            return refunded
        except Exception:
            log.exception("could not refund undelivered charges")
            return 0

    async def readiness(self) -> dict[str, str]:
        """ "ok" or the problem, for the state database and the code database (`/readyz`)."""
        checks: dict[str, str] = {}
        try:
            await self._accounts.ping()
            checks["state"] = "ok"
        except Exception as error:
            checks["state"] = self._storage_problem(error) or type(error).__name__
        try:
            checks["codes"] = "ok" if self._catalog.suggest("E11.9", 1) else "no codes"
        except Exception as error:
            checks["codes"] = type(error).__name__
        return checks

    def _storage_problem(self, error: BaseException) -> str | None:
        try:
            return self._accounts.storage_problem(error)
        except Exception:
            return None

    async def _claim(self, request: Request) -> bool:
        """Processed once: False when another process (or this one) already took this id.

        A state database that cannot record the claim (disk full, read-only) must not
        silence free commands such as help: the request then goes ahead unclaimed.
        """
        try:
            return await self._accounts.claim(request)
        except Exception as error:
            problem = self._storage_problem(error)
            if problem:
                log.warning("request id not recorded: %s", problem)
            else:
                log.exception("could not record request id (platform %s)", request.user.platform)
            return True

    def _duplicate(self, request: Request) -> Reply:
        """The answer to a request id that was already processed: adapters post nothing."""
        self._duplicates[request.request_id] = None
        while len(self._duplicates) > MAX_REMEMBERED_DUPLICATES:
            self._duplicates.pop(next(iter(self._duplicates)))
        log.info("request %s was already processed; not answering again", request.request_id)
        return Reply(ReplyKind.INFO, text=ALREADY_ANSWERED, title="Already answered", replayed=True)

    async def close(self) -> None:
        """Release the state database."""
        await self._accounts.close()

    # ------------------------------------------------------------------ dispatch

    async def _dispatch(self, request: Request, command: Command) -> Reply:
        kind = command.kind
        if kind is CommandKind.HELP:
            return Reply(ReplyKind.INFO, text=HELP_TEXT, title="codebot help")
        if kind is CommandKind.INVALID:
            return Reply(ReplyKind.INVALID, text=command.text, title="Invalid request")
        if kind in (CommandKind.LOOKUP, CommandKind.SHARE, CommandKind.FULL):
            day = command.as_of or self._clock()
            # Only a parse that kept the text as a query may fall back to a search; resolve
            # the codes once either way.
            if not command.query:
                items = self._resolver.items(command.codes, day)
            else:
                maybe_items = self._resolver.items_or_none(command.codes, day)
                if maybe_items is None:
                    return await self._search_reply(request, command.query, None, day)
                items = maybe_items
            items, omitted = shown_items(items, command.skipped)
            items = with_coding(items, self._knowledge, day)
            return await self._cards_reply(
                request,
                items,
                share=kind is CommandKind.SHARE,
                omitted=omitted,
                full=kind is CommandKind.FULL,
            )
        if kind is CommandKind.SEARCH:
            return await self._search_reply(request, command.query, command.system, command.as_of)
        if kind in (CommandKind.HISTORY, CommandKind.CHANGES):
            return await self._release_reply(request, command)
        if kind is CommandKind.NOTE:
            return await self._note_reply(request, command)
        if kind is CommandKind.KNOWLEDGE:
            return await self._knowledge_reply(request, command)
        return await self._accounts.handle(request, command)

    # ------------------------------------------------------------------ lookup

    async def _cards_reply(
        self,
        request: Request,
        items: list[ReplyItem],
        *,
        share: bool,
        omitted: tuple[str, ...] = (),
        full: bool = False,
    ) -> Reply:
        """Cards, charged one per card shown (`items` is already what every platform shows).

        A full card of a code this user was just shown costs nothing more.
        """
        cards = [item for item in items if isinstance(item, CodeCard)]
        title = ", ".join(_card_label(item) for item in items[:5])
        if not cards:
            return Reply(
                ReplyKind.CARDS, items=tuple(items), title=title, omitted=omitted, full=full
            )
        paid = [c for c in cards if not (full and self._shown.was_shown(request.user, c))]
        cost = self._accounts.cost("share" if share else "lookup") * len(paid)
        # one round trip: the charge, then (if allowed) the team notes on these cards
        outcome, notes = await self._accounts.charge_and_notes(
            request.user,
            request.request_id,
            cost,
            [(card.system.value, card.code) for card in cards],
        )
        self._spend.note(request.user, outcome)
        if not outcome.allowed:
            return _exhausted(outcome)
        try:
            with_notes = tuple(
                _with_note(item, notes) if isinstance(item, CodeCard) else item for item in items
            )
            if not outcome.replayed:
                await self._accounts.record_lookups(
                    request, [LookupRecord(c.system.value, c.code, c.title) for c in cards]
                )
        except Exception:
            await self._accounts.refund(request.user, request.request_id)
            raise
        self._shown.remember(request.user, cards)
        actions = () if share else card_actions(cards, full=full)
        return Reply(
            ReplyKind.CARDS,
            items=with_notes,
            notice=outcome.notice,
            actions=actions,
            public=share,
            title=title,
            replayed=outcome.replayed,
            omitted=omitted,
            full=full,
        )

    # ------------------------------------------------------------------ search

    async def _search_reply(
        self, request: Request, query: str, system: CodeSystem | None, day: date | None = None
    ) -> Reply:
        if system is CodeSystem.CPT and not self._catalog.has_cpt():
            return Reply(ReplyKind.INFO, text=_CPT_NOT_LOADED, title="CPT® not loaded")
        cost = self._accounts.cost("search")
        early = await self._spend.charge_first(request, cost)
        if early is not None and not early.allowed:
            return _exhausted(early)  # nothing left: refused before any search work
        hits: Sequence[SearchHit] = valid_first(
            self._search.search(query, system=system, limit=SEARCH_LIMIT * OVERFETCH),
            day or self._clock(),
            self._catalog.valid_on,
            SEARCH_LIMIT,
        )
        shown_query = query[:100]
        if not hits:
            await self._spend.undo(request, early)
            return Reply(
                ReplyKind.SEARCH,
                text=shown_query,
                title=f"No codes match \u201c{shown_query}\u201d",
            )
        outcome = early or await self._accounts.charge(request.user, request.request_id, cost)
        self._spend.note(request.user, outcome)
        if not outcome.allowed:
            return _exhausted(outcome)
        actions = tuple(Action("show", hit.code, hit.code) for hit in hits)
        return Reply(
            ReplyKind.SEARCH,
            items=tuple(hits),
            text=shown_query,
            notice=outcome.notice,
            actions=actions,
            title=f"Codes matching \u201c{shown_query}\u201d",
            replayed=outcome.replayed,
        )

    # ------------------------------------------------------------------ knowledge

    async def _knowledge_reply(self, request: Request, command: Command) -> Reply:
        """DRG, grouping, ICD-9 and guideline answers: one paid lookup when they have content."""
        if self._answers is None:
            return Reply(ReplyKind.INFO, text=_NO_KNOWLEDGE, title="Not available")
        cost = self._accounts.cost("lookup")
        early = await self._spend.charge_first(request, cost)
        if early is not None and not early.allowed:
            return _exhausted(early)  # nothing left: refused before any grouping work
        answer = self._answers.answer(command.args, command.as_of or self._clock())
        if not answer.found:
            await self._spend.undo(request, early)
            return Reply(ReplyKind.INFO, text=answer.text, title=answer.title)
        outcome = early or await self._accounts.charge(request.user, request.request_id, cost)
        self._spend.note(request.user, outcome)
        return _paid_info(outcome, answer.text, answer.title)

    # ------------------------------------------------------------------ releases

    async def _release_reply(self, request: Request, command: Command) -> Reply:
        """`/code history CODE`, `/code changes SET RELEASE`: one lookup each."""
        if command.kind is CommandKind.HISTORY:
            answer = history_answer(self._catalog, command)
        else:
            answer = changes_answer(self._catalog, command, command.as_of or self._clock())
        if not answer.found:
            return Reply(ReplyKind.INVALID, text=answer.text, title=answer.title)
        outcome = await self._accounts.charge(
            request.user, request.request_id, self._accounts.cost("lookup")
        )
        return _paid_info(outcome, answer.text, answer.title, answer.actions)

    # ------------------------------------------------------------------ notes

    async def _note_reply(self, request: Request, command: Command) -> Reply:
        """A note must name a real code: resolve it here, then let the accounts store it."""
        typed = command.codes[0].text
        cards = self._catalog.lookup(typed)
        if not cards:
            return Reply(
                ReplyKind.INVALID,
                text=self._resolver.not_found(typed).message,
                title="Invalid code",
            )
        return await self._accounts.handle(request, command)


_NO_KNOWLEDGE = "MS-DRG, HCC, GEM and guideline answers are not available in this deployment."
_CPT_NOT_LOADED = (
    "CPT® descriptors are licensed by the AMA, and no licensed CPT file is loaded. "
    "An admin can load one with `codebot data import-cpt FILE`."
)


def error_reply(reference: str) -> Reply:
    """The answer to an unexpected failure: a short reference id, never the exception text."""
    return Reply(
        ReplyKind.ERROR,
        text=f"Sorry, something went wrong on our side (ref {reference}). Please try again.",
        title="Error",
    )


def storage_error_reply(problem: str, reference: str) -> Reply:
    """The state database cannot record this request (`problem` names it): nothing was
    charged or changed; free commands such as help still answer."""
    return Reply(
        ReplyKind.ERROR,
        text=(
            f"Sorry, the {problem}, so this cannot be answered right now "
            f"(`/code help` still works; ref {reference})."
        ),
        title="State database unavailable",
    )


def _exhausted(outcome: ChargeOutcome) -> Reply:
    """Nothing left: no code content. The refusal already states the count and the way to get
    more, so no separate notice line repeats it (a refused answer costs nothing)."""
    return Reply(
        ReplyKind.EXHAUSTED,
        text=outcome.refusal,
        title="No code lookups left",
        replayed=outcome.replayed,  # a retried refusal is not posted twice either
    )


def _paid_info(
    outcome: ChargeOutcome, text: str, title: str, actions: tuple[Action, ...] = ()
) -> Reply:
    """An INFO answer after its charge: the answer with the quota notice, or the refusal."""
    if not outcome.allowed:
        return _exhausted(outcome)
    return Reply(
        ReplyKind.INFO,
        text=text,
        notice=outcome.notice,
        actions=actions,
        title=title,
        replayed=outcome.replayed,
    )


def _card_label(item: ReplyItem) -> str:
    if isinstance(item, CodeCard):
        return f"{item.code} {item.system.label}"
    if isinstance(item, CptInfo):
        return f"{item.code} CPT®"
    if isinstance(item, NotFound):
        return f"{item.query} not found"
    return item.code


def _with_note(card: CodeCard, notes: dict[tuple[str, str], TeamNote]) -> CodeCard:
    note = notes.get((card.system.value, card.code))
    if note is None:
        return card
    return replace(card, team_note=note.text, team_note_author=note.author)
