"""`StateAccounts`: the `bot.ports.Accounts` implementation over any `StateStore`.

It charges quota (through `bot.state.ledger.QuotaLedger`), keeps the team's lookup history
and notes, and answers the free account and team commands: `/code quota`, `register`,
`admin …`, `note`, `recent`, `stats`. Every answer is `Reply(kind=ReplyKind.INFO, …)`.
The same code runs on SQLite and PostgreSQL: only the store differs.

Privacy: every team query is filtered by (platform, tenant) of the asking user, so one
workspace/server never sees another's notes, history or stats; admin targets are always
resolved inside the admin's own platform and tenant.

Notes are stored as raw text (escaping is each adapter's job) after a defensive clean-up
(`bot.state.policy.sanitize_note`): NFKC, no control characters, no mention syntax and no
mass mentions, bounded length.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from bot.codes.normalize import normalize_code
from bot.commands import Command, CommandKind
from bot.config import Settings
from bot.logsafe import audit
from bot.model import CodeSystem, Reply, ReplyKind, Request, UserRef
from bot.ports import ChargeOutcome, LookupRecord, TeamNote
from bot.state.ledger import QuotaLedger
from bot.state.plans import Period, Plan, PlanTable, lookups, month_start
from bot.state.policy import (
    MAX_GRANT,
    Clock,
    GrantRefused,
    NoteChange,
    PoolState,
    account_key,
    normalize_target,
    notice_text,
    parse_timestamp,
    sanitize_note,
    stored_user_id,
    timestamp,
    utc_now,
)
from bot.state.store import Delivery, HistoryRow, StateStore

__all__ = ["StateAccounts", "normalize_target", "sanitize_note"]

logger = logging.getLogger(__name__)

# resolve(code as typed) -> (system, display code), or None when it is not a code
Resolve = Callable[[str], tuple[str, str] | None]

RECENT_LIMIT = 20
FLUSH_ROWS = 100  # lookup history rows per insert (9 parameters each, far below limits)
FLUSH_SECONDS = 0.2
TOP_LIMIT = 10
TEAM_PLAN_OFF = frozenset({"none", "off", "remove", "clear"})
# A charge with no delivery record this long after it was made is refunded at the next
# start: every adapter delivers or gives up (and refunds) well within it (Slack retries
# an event for about 5 minutes; a slow answer is posted within seconds).
ANSWER_DEADLINE = timedelta(minutes=15)


class StateAccounts:
    """Quota, registration, admin controls and team data over one state store."""

    def __init__(
        self,
        ledger: QuotaLedger,
        admins: Sequence[str] = (),
        resolve: Resolve | None = None,
    ) -> None:
        self.ledger = ledger
        self.store: StateStore = ledger.store
        self._admins = frozenset(admins)
        self._resolve = resolve
        self._known_names: dict[tuple[str, str, str], str] = {}
        self._pending: list[HistoryRow] = []  # lookup history not yet written
        self._deliveries: list[Delivery] = []  # delivery records not yet written
        self._flush_lock = asyncio.Lock()
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flush_tasks: set[asyncio.Future[None]] = set()

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        now: Clock = utc_now,
        resolve: Resolve | None = None,
    ) -> StateAccounts:
        """Open (create, migrate) the state database of `settings.database_url`.

        The `[quota]` plans and the admins come from `settings`; `now` is the clock (tests
        inject one); `resolve` maps a typed code to its (system, display code) so notes are
        keyed exactly (without it, by the code key). Raises ConfigError for a malformed
        `[quota]` table or database URL.
        """
        from bot.state import open_store  # the package imports this module

        plans = PlanTable.from_config(settings.quota)
        store = await open_store(settings)
        try:
            await store.install_plans(plans)
        except BaseException:
            await store.close()
            raise
        return cls(QuotaLedger(store, plans, now), settings.admins, resolve)

    @property
    def plans(self) -> PlanTable:
        """The plan table in use."""
        return self.ledger.plans

    def cost(self, kind: str) -> int:
        """What a paid answer of `kind` costs: "lookup" (per card), "search", "share"."""
        return self.ledger.plans.cost(kind)

    # ------------------------------------------------------------------ Accounts protocol

    async def charge(self, user: UserRef, request_id: str, cost: int) -> ChargeOutcome:
        """Charge `cost` for `request_id` once (atomic, idempotent per request id)."""
        return await self.ledger.charge(user, request_id, cost)

    async def refund(self, user: UserRef, request_id: str) -> None:
        """Undo the charge of a request whose answer could not be produced."""
        await self.ledger.refund(user, request_id)

    async def record_lookups(self, request: Request, records: Sequence[LookupRecord]) -> None:
        """Remember answered lookups for `/code recent` and `/code stats`.

        Rows are buffered and written in one multi-row insert per batch, in the background
        (at most FLUSH_SECONDS later, at FLUSH_ROWS rows, before any history read, and on
        close), so no request waits for history: it is informational, and saving a commit
        per request is what keeps charged lookups above 2,000/s. A crash may lose the last
        fraction of a second of history, never a charge (charges are written before the
        answer, in their own statement).
        """
        if not records:
            return
        user = request.user
        name = (user.display_name or user.user_id)[:100]
        await self._remember_name(user, name)
        now = timestamp(self.ledger.now())
        for record in records:
            self._pending.append(
                (
                    user.platform,
                    user.tenant_id,
                    user.user_id,
                    name,
                    record.system,
                    record.code,
                    record.title[:300],
                    request.request_id,
                    now,
                )
            )
        if len(self._pending) >= FLUSH_ROWS:
            self._flush_in_background()  # a full batch: write it now, but never wait for it
        else:
            self._schedule_flush()

    def _flush_in_background(self) -> None:
        # One background flush at a time: a running one leaves later rows to the timer it
        # sets, so requests never queue behind each other's history writes.
        if any(not task.done() for task in self._flush_tasks):
            return
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush_soon()

    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                FLUSH_SECONDS, self._flush_soon
            )

    def _flush_soon(self) -> None:
        self._flush_timer = None
        task = asyncio.ensure_future(self._flush_logged())
        self._flush_tasks.add(task)  # keep a reference until done (asyncio holds weak ones)
        task.add_done_callback(self._flush_tasks.discard)

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except Exception as error:
            problem = self.storage_problem(error)
            if problem:
                logger.warning("lookup history not written: %s", problem)
            else:
                logger.exception("could not write the team lookup history or delivery records")

    async def flush(self) -> None:
        """Write buffered lookup history now."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        # one flush at a time: a read after flush() must see rows a timer's flush took
        # (on PostgreSQL two pooled connections would otherwise race)
        async with self._flush_lock:
            await self._flush_pending()

    async def _flush_pending(self) -> None:
        # Only what is pending now: rows that arrive while these are written belong to the
        # next flush. (Draining until empty kept the request that started a flush waiting
        # for as long as traffic lasted, seconds under load, past Slack's ack deadline.)
        rows, self._pending = self._pending, []
        deliveries, self._deliveries = self._deliveries, []
        for start in range(0, len(rows), FLUSH_ROWS):
            await self.store.insert_lookups(rows[start : start + FLUSH_ROWS])
        for start in range(0, len(deliveries), FLUSH_ROWS):
            done = deliveries[start : start + FLUSH_ROWS]
            await self.store.record_deliveries(done, timestamp(self.ledger.now()))
        if self._pending or self._deliveries:
            self._schedule_flush()  # arrivals meanwhile: the timer writes them soon

    def storage_problem(self, error: BaseException) -> str | None:
        """The state database's own failure in words (naming it), or None."""
        return self.store.storage_problem(error)

    async def ping(self) -> None:
        """Raise unless the state database answers a trivial query."""
        await self.store.ping()

    # ------------------------------------------------------------------ processed once

    async def claim(self, request: Request) -> bool:
        """True when this process is the first to handle `request.request_id`, anywhere.

        Free commands (help, register, admin, notes, …) claim their id before doing
        anything, so a Slack retry or a replayed slash command that reaches any process
        sharing the state database is neither applied nor answered twice. Paid answers need
        no claim: their ledger row keyed by the same id is the record (`replayed`).
        """
        user = request.user
        return await self.store.claim_request(
            user.platform,
            request.request_id,
            user.tenant_id,
            stored_user_id(user.user_id),
            timestamp(self.ledger.now()),
        )

    async def delivered(self, request: Request) -> None:
        """Record that the answer reached the platform (written with the next history batch).

        A charge with no delivery record older than ANSWER_DEADLINE is refunded by
        `refund_undelivered` at the next start (the process died between charging and
        answering). The record is buffered like history: a crash in the FLUSH_SECONDS after
        a delivery loses its record, and that charge is refunded too (in the user's favour).
        """
        user = request.user
        self._deliveries.append(
            (user.platform, request.request_id, user.tenant_id, stored_user_id(user.user_id))
        )
        self._schedule_flush()

    async def refund_undelivered(self, deadline: timedelta = ANSWER_DEADLINE) -> int:
        """Refund charges older than `deadline` that have no delivery record; return how many.

        Only charges made since delivery records began (the `processed_requests`
        migration) are considered, so an upgrade never refunds old history.
        """
        since = await self.store.records_deliveries_since()
        before = timestamp(self.ledger.now() - deadline)
        if not since or since >= before:
            return 0
        refunded = await self.store.refund_undelivered(since, before)
        if refunded:
            audit("crash_refund", charges=refunded, before=before)
        return refunded

    async def _remember_name(self, user: UserRef, name: str) -> None:
        # the users row carries the display name for `admin usage`; write it only when it
        # changes so the hot path stays one statement per request
        key = (user.platform, user.tenant_id, user.user_id)
        if self._known_names.get(key) == name:
            return
        await self.store.save_display_name(
            account_key(user), name[:100], timestamp(self.ledger.now())
        )
        self._known_names[key] = name

    async def team_notes(
        self, user: UserRef, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], TeamNote]:
        """Notes of the user's team on the given (system, display code) pairs."""
        if not keys:
            return {}
        return await self.store.team_notes(user.platform, user.tenant_id, keys)

    async def charge_and_notes(
        self, user: UserRef, request_id: str, cost: int, keys: Sequence[tuple[str, str]]
    ) -> tuple[ChargeOutcome, dict[tuple[str, str], TeamNote]]:
        """`charge`, then (when allowed) `team_notes(user, keys)`, in one database hop.

        If the notes cannot be read, the charge is refunded and the error raised, so a
        caller that gets an exception was charged nothing.
        """
        outcome, notes = await self.ledger.charge_with_notes(user, request_id, cost, keys)
        if isinstance(notes, BaseException):
            await self.refund(user, request_id)
            raise notes
        return outcome, notes or {}

    async def handle(self, request: Request, command: Command) -> Reply:
        """Answer the free account/team commands: quota, register, admin, note, recent, stats."""
        kind = command.kind
        if kind is CommandKind.QUOTA:
            return await self._quota(request.user)
        if kind is CommandKind.REGISTER:
            return await self._register(request.user)
        if kind is CommandKind.ADMIN:
            return await self._admin(request, command.args)
        if kind is CommandKind.NOTE:
            return await self._note(request, command)
        if kind is CommandKind.RECENT:
            return await self._recent(request.user)
        if kind is CommandKind.STATS:
            return await self._stats(request.user)
        return _info(f"`/code {kind.value}` is not an account command.", "Not available")

    async def close(self) -> None:
        """Write buffered history and close the state database."""
        try:
            await self.flush()
        finally:
            await self.store.close()

    # ------------------------------------------------------------------ quota, register

    async def _quota(self, user: UserRef) -> Reply:
        status = await self.ledger.status(user)
        now = self.ledger.now()
        lines = [f"You have {_pool_line(status.own, now)}"]
        if status.own.granted:
            lines.append(f"That includes {lookups(status.own.granted)} granted by an admin.")
        if status.team is not None:
            lines.insert(0, f"Your team has {_pool_line(status.team, now)}")
            lines.append("Lookups come from the team plan first, then from your own.")
        if status.own.plan.name == self.plans.guest_plan and self.plans.register_bonus() > 0:
            lines.append(
                f"Register with `/code register` to get {self.plans.register_bonus():,} more."
            )
        return _info("\n".join(lines), "Your quota")

    async def _register(self, user: UserRef) -> Reply:
        result = await self.ledger.register(user)
        status = await self.ledger.status(user)
        line = notice_text(status.own.plan, status.own.remaining, self.ledger.now())
        if result.already_registered:
            return _info(f"You are already registered. {line}", "Already registered")
        if result.plan.name != self.plans.registered_plan:
            return _info(
                f"You are registered, and keep your {result.plan.display} plan. {line}",
                "Registered",
            )
        bonus = self.plans.register_bonus()
        more = f" You get {bonus:,} more code lookup{'' if bonus == 1 else 's'}." if bonus else ""
        return _info(f"You are registered.{more} {line}", "Registered")

    # ------------------------------------------------------------------ admin

    def is_admin(self, request: Request) -> bool:
        """Adapter-verified admins, plus ids listed in the settings ("platform:tenant:user")."""
        user = request.user
        return request.is_admin or f"{user.platform}:{user.tenant_id}:{user.user_id}" in (
            self._admins
        )

    async def _admin(self, request: Request, args: tuple[str, ...]) -> Reply:
        action = args[0].lower() if args else ""
        user = request.user
        if not self.is_admin(request):
            # ids only: never the message text, which could carry anything
            audit(
                "admin_refused",
                level=logging.WARNING,
                command=action[:20],
                platform=user.platform,
                tenant=user.tenant_id,
                user=user.user_id,
            )
            return _info(
                "Only admins can use `/code admin` (workspace admins and owners on Slack, "
                "members with Manage Server on Discord, `--admin` in the console).",
                "Not allowed",
            )
        by = f"{user.platform}:{user.tenant_id}:{user.user_id}"
        if action == "usage":
            return await self._admin_usage(user)
        if action == "grant" and len(args) == 3:
            return await self._admin_grant(user, args[1], args[2], by)
        if action == "plan" and len(args) == 3:
            return await self._admin_plan(user, args[1], args[2], by)
        return _info(
            "Usage: /code admin grant @user N | admin grant team N | admin plan @user PLAN | "
            "admin plan team PLAN | admin usage",
            "Admin usage",
        )

    async def _admin_grant(self, user: UserRef, target_raw: str, amount_raw: str, by: str) -> Reply:
        amount_text = amount_raw.replace(",", "").replace("_", "")
        if not amount_text.isascii() or not amount_text.isdigit():
            return _info(
                f"A grant must be a whole number from 1 to {MAX_GRANT:,} (no negative grants).",
                "Grant refused",
            )
        amount = int(amount_text)
        team = target_raw.lower() == "team"
        target = None if team else normalize_target(target_raw)
        if not team and target is None:
            return _info("Name one user: `/code admin grant @user 50`.", "Grant refused")
        try:
            pool = await self.ledger.grant(user, target, amount, by)
        except GrantRefused as refused:
            return _info(f"Not granted: {refused.reason}.", "Grant refused")
        audit("grant", by=by, amount=amount, to="team" if team else target)
        who = "the team" if team else _mention(target or "")
        left = notice_text(pool.plan, pool.remaining, self.ledger.now(), team=team)
        return _info(f"Granted {lookups(amount)} to {who}. {left}", "Granted", [target or ""])

    async def _admin_plan(self, user: UserRef, target_raw: str, plan_raw: str, by: str) -> Reply:
        plan_name = plan_raw.lower()
        team = target_raw.lower() == "team"
        available = ", ".join(sorted(self.plans.plans))
        if team and plan_name in TEAM_PLAN_OFF:
            await self.ledger.set_team_plan(user, None)
            audit("team_plan", by=by, plan=None)
            return _info(
                "The team plan is removed: everyone uses their own allowance again.",
                "Team plan removed",
            )
        plan = self.plans.get(plan_name)
        if plan is None:
            return _info(f"There is no plan called that. Plans: {available}.", "Unknown plan")
        if team:
            await self.ledger.set_team_plan(user, plan)
            audit("team_plan", by=by, plan=plan.name)
            return _info(
                f"The team is on the {plan.display} plan "
                f"({_plan_size(plan)}, shared by all members, used before their own).",
                "Team plan set",
            )
        target = normalize_target(target_raw)
        if target is None:
            return _info("Name one user: `/code admin plan @user pro`.", "Plan not set")
        await self.ledger.set_user_plan(user, target, plan)
        audit("user_plan", by=by, to=target, plan=plan.name)
        return _info(
            f"{_mention(target)} is on the {plan.display} plan ({_plan_size(plan)}).",
            "Plan set",
            [target],
        )

    async def _admin_usage(self, user: UserRef) -> Reply:
        since = month_start(self.ledger.now()).date().isoformat()
        top = await self.ledger.top_users(user, TOP_LIMIT)
        if not top:
            return _info(f"No lookups charged since {since} (UTC).", "Usage")
        lines = [f"Top users since {since} (UTC):"]
        names: list[str] = []
        for rank, (user_id, name, total) in enumerate(top, start=1):
            shown = f"{name} ({user_id})" if name and name != user_id else user_id
            names += [name or "", user_id]
            lines.append(f"{rank}. {shown}: {lookups(total)}")
        return _info("\n".join(lines), "Usage", names)

    # ------------------------------------------------------------------ notes

    def _note_key(self, typed: str) -> tuple[str, str, str] | None:
        """(system, code_key, display code) for a typed code; None when it is no code."""
        if self._resolve is None:
            key = normalize_code(typed)
            # shown as typed (upper case); matched by key, in any code set
            return ("", key, typed.strip().upper()[:12]) if key else None
        resolved = self._resolve(typed)
        if resolved is None:
            return None
        system, code = resolved
        return system, normalize_code(code), code

    async def _note(self, request: Request, command: Command) -> Reply:
        if not command.codes:
            return _info("Usage: /code note E11.9 TEXT (or /code note E11.9 delete)", "Note")
        typed = command.codes[0].text
        note_key = self._note_key(typed)
        if note_key is None:
            return _info(f"{typed[:20]} is not a valid code.", "Note not saved", [typed[:20]])
        system, code_key, code = note_key
        user = request.user
        deleting = command.args == ("delete",)
        text = "" if deleting else sanitize_note(command.text)
        if not deleting and not text:
            return _info("The note is empty.", "Note not saved")
        change = await self.store.change_note(
            user.platform,
            user.tenant_id,
            system=system,
            code_key=code_key,
            code=code,
            text=None if deleting else text,
            author_id=user.user_id,
            author_name=(user.display_name or user.user_id)[:100],
            may_override=self.is_admin(request),
            now=timestamp(self.ledger.now()),
        )
        if change is NoteChange.NOT_AUTHOR:
            return _info(
                f"Only the note's author or an admin can change the team note on {code}.",
                "Note not changed",
            )
        if change is NoteChange.NO_NOTE:
            return _info(f"There is no team note on {code}.", "No note")
        if change is NoteChange.REMOVED:
            return _info(f"The team note on {code} is removed.", "Note removed")
        return _info(f"Team note on {code} {change.value}: {text}", "Note saved", [text])

    # ------------------------------------------------------------------ recent, stats

    async def _recent(self, user: UserRef) -> Reply:
        await self.flush()
        rows = await self.store.recent_lookups(user.platform, user.tenant_id, RECENT_LIMIT)
        if not rows:
            return _info("Your team has no lookups yet.", "Recent lookups")
        lines = [f"Your team's last {len(rows)} lookups:"]
        names = sorted({row.display_name or "" for row in rows})
        for row in rows:
            when = parse_timestamp(row.created_at).strftime("%Y-%m-%d %H:%M")
            lines.append(
                f"{when} UTC · {row.display_name} · {row.code} "
                f"({_system_label(row.system)}) {_clip(row.title, 80)}"
            )
        return _info("\n".join(lines), "Recent lookups", names)

    async def _stats(self, user: UserRef) -> Reply:
        await self.flush()
        now = self.ledger.now()
        since = timestamp(month_start(now))
        total, people = await self.store.usage_since(user.platform, user.tenant_id, since)
        top = await self.store.top_codes(user.platform, user.tenant_id, since, TOP_LIMIT)
        month = month_start(now).date().isoformat()
        lines = [
            f"Team usage since {month} (UTC): {lookups(total)} by "
            f"{people:,} {'person' if people == 1 else 'people'}."
        ]
        status = await self.ledger.status(user)
        if status.team is not None:
            lines.append(f"Team plan: {_pool_line(status.team, now)}")
        if top:
            lines.append("Most looked-up codes:")
            for rank, row in enumerate(top, start=1):
                lines.append(
                    f"{rank}. {row[1]} ({_system_label(row[0])}) {_clip(row[2], 60)} × {row[3]:,}"
                )
        return _info("\n".join(lines), "Team stats")


def _info(text: str, title: str, user_text: Sequence[str] = ()) -> Reply:
    # user_text: the parts of `text` users typed, for adapters to escape (Reply.user_text)
    return Reply(ReplyKind.INFO, text=text, title=title, user_text=tuple(t for t in user_text if t))


def _pool_line(pool: PoolState, now: datetime) -> str:
    remaining = pool.remaining
    if remaining is None:
        return f"unlimited code lookups ({pool.plan.display} plan)."
    line = f"{lookups(remaining)} remaining ({pool.plan.display} plan, {pool.used:,} used"
    line += " this month)." if pool.plan.resets_on(now) else ")."
    resets = pool.plan.resets_on(now)
    if resets is not None:
        line += f" Resets {resets.isoformat()} (UTC)."
    return line


def _plan_size(plan: Plan) -> str:
    if plan.limit is None:
        return "unlimited"
    per = " a month" if plan.period is Period.MONTHLY else ""
    return f"{lookups(plan.limit)}{per}"


def _mention(target: str) -> str:
    # plain id, not <@id>: adapters escape "<" and ">", and a mention could ping
    return f"user {target}"


def _system_label(system: str) -> str:
    try:
        return CodeSystem(system).label
    except ValueError:
        return system


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
