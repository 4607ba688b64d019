"""Safe logging: user text escaped and bounded, audit lines unforgeable, floods rate-limited.

Anything a user, a platform or an attacker can put in a log line goes through `safe()`
(or the `SafeFormatter` safety net installed by `configure_logging`), so one log record is
always one line: a CR/LF in a chat message or an HTTP body can never start a fake line.

Audit events (admin grants, plan changes, purges) go to the `codebot.audit` logger through
`audit()`, as one JSON object per line. Every value is JSON-encoded with `ensure_ascii`, so
user text can close neither the string nor the line; a forged "admin … granted" inside a
chat message shows up escaped inside some other record, never as an audit record.

`RateLimitedLog` bounds lines about refused (unauthenticated) requests: a flood of bad
requests costs the log a few lines a minute, plus a count of what was suppressed.

    from bot.logsafe import audit, safe
    log.info("event %s already answered", safe(event_id))
    audit("grant", by=admin_key, to=target_key, amount=50)
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

AUDIT_LOGGER = "codebot.audit"
DEFAULT_MAX_CHARS = 200  # a code query, a user id or a URL fits; a 900 KB body does not
MAX_MESSAGE_CHARS = 4000  # one formatted message, whoever logged it (bolt quotes bodies)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Characters that could end a line, rewrite the terminal or hide text: C0 controls, DEL,
# C1 controls, Unicode line/paragraph separators, bidi overrides and zero-width marks.
_UNSAFE = frozenset(
    (
        *range(0x00, 0x20),
        0x7F,
        *range(0x80, 0xA0),
        0x2028,
        0x2029,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
        0x200B,
        0x200E,
        0x200F,
        0xFEFF,
    )
)
_ESCAPES = {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}


def _escape_char(code: int) -> str:
    if code in _ESCAPES:
        return _ESCAPES[code]
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_LINE_TABLE: dict[int, str] = {code: _escape_char(code) for code in _UNSAFE}
# safe() also doubles backslashes, so an escaped "\n" can be told apart from a typed one;
# the formatter's net does not, so JSON audit messages (already escaped) pass unchanged.
_TABLE: dict[int, str] = {**_LINE_TABLE, ord("\\"): "\\\\"}


def safe(value: object, max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """`value` as one bounded log-safe line: control characters escaped, at most `max_chars`
    characters of the original kept, with the length of what was cut."""
    text = value if isinstance(value, str) else str(value)
    cut = len(text) - max_chars
    if cut > 0:
        text = text[:max_chars]
    escaped = text.translate(_TABLE)
    return f"{escaped}…(+{cut} chars)" if cut > 0 else escaped


def escape_line(text: str) -> str:
    """Escape control characters (not backslashes) without truncating: the formatter's net."""
    return text.translate(_LINE_TABLE)


def audit(event: str, *, level: int = logging.INFO, **fields: object) -> None:
    """Log one audit record: `audit {"event": …, …}` as a single JSON line on `codebot.audit`.

    Values are kept as given (numbers, strings, None) and bounded; the JSON encoding with
    `ensure_ascii` escapes quotes, CR/LF and every non-ASCII character, so nothing a user
    types can end the record or add a field.
    """
    record: dict[str, object] = {"event": event}
    for key, value in fields.items():
        if isinstance(value, bool | int | float) or value is None:
            record[key] = value
        else:
            record[key] = str(value)[:DEFAULT_MAX_CHARS]
    logging.getLogger(AUDIT_LOGGER).log(
        level, "audit %s", json.dumps(record, ensure_ascii=True, sort_keys=False)
    )


class SafeFormatter(logging.Formatter):
    """The safety net: the formatted message of every record is escaped to one bounded line.

    Call sites should still use `safe()` (which also bounds length); this catches what a
    third-party library logs (bolt, discord.py, aiohttp). Tracebacks keep their own lines:
    they come from our code, and `safe()`-style escaping would make them unreadable.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format as usual, with the message part escaped and bounded."""
        message = record.message
        cut = len(message) - MAX_MESSAGE_CHARS
        # escaping lengthens the text: bound what is kept after escaping it
        escaped = escape_line(message[:MAX_MESSAGE_CHARS])[:MAX_MESSAGE_CHARS]
        record.message = f"{escaped}…(+{cut} chars)" if cut > 0 else escaped
        return super().formatMessage(record)


def configure_logging(level: str | int) -> None:
    """Root logging for the CLI and servers: `LOG_FORMAT` through a `SafeFormatter`."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(SafeFormatter(LOG_FORMAT))
    # audit records are always kept, also when the CLI logs warnings only
    audit_logger = logging.getLogger(AUDIT_LOGGER)
    if audit_logger.level == logging.NOTSET or audit_logger.level > logging.INFO:
        audit_logger.setLevel(logging.INFO)


class RateLimitedLog:
    """At most `per_window` lines per `window` seconds; the rest are counted and reported.

    For refused requests (bad signatures, oversized bodies): one short line each while the
    rate is low, then silence plus a "N similar lines suppressed" on the next allowed line.
    Thread-safe; the clock is injectable for tests.
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        per_window: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._per_window = per_window
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._window_start = float("-inf")
        self._count = 0
        self._suppressed = 0

    def warning(self, message: str, *args: object) -> bool:
        """Log `message % args` at WARNING unless over the rate; True when it was logged.

        Pass user-supplied values through `safe()`.
        """
        with self._lock:
            now = self._clock()
            if now - self._window_start >= self._window:
                self._window_start = now
                self._count = 0
            if self._count >= self._per_window:
                self._suppressed += 1
                return False
            self._count += 1
            suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            self._logger.warning(message + " (%d similar lines suppressed)", *args, suppressed)
        else:
            self._logger.warning(message, *args)
        return True


__all__ = [
    "AUDIT_LOGGER",
    "LOG_FORMAT",
    "MAX_MESSAGE_CHARS",
    "RateLimitedLog",
    "SafeFormatter",
    "audit",
    "configure_logging",
    "escape_line",
    "safe",
]
