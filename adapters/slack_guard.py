"""The gate in front of bolt for `POST /slack/events`: size, signature, then well-formedness.

Every request is checked here before bolt sees it, in an order that costs an attacker the
least of our time and log:

1. size: a `Content-Length` over `MAX_BODY_BYTES` is refused (413) without reading; a
   chunked body is read only up to the limit;
2. signature: `X-Slack-Request-Timestamp` must be a number within `MAX_CLOCK_SKEW_SECONDS`
   and `X-Slack-Signature` the HMAC-SHA256 of `v0:{timestamp}:{body}` under the signing
   secret (401 otherwise; a non-numeric timestamp is a 401 too, not bolt's 500);
3. form: the body must be UTF-8, and parse the way bolt will parse it (JSON object, or a
   form whose `payload=` is a JSON object); anything else is a 400.

A refused request gets one short log line (status, reason, size, peer; never the body),
and at most `REFUSAL_LINES_PER_MINUTE` of those a minute: bolt's own refusal log line, which
quotes the whole body at INFO, is never reached because bolt only sees verified requests.
bolt keeps its own signature check on as a second lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.logsafe import RateLimitedLog, safe

MAX_BODY_BYTES = 1024 * 1024  # Slack's payloads are a few KB; 1 MB is generous
MAX_CLOCK_SKEW_SECONDS = 300  # Slack's own rule: older signed requests may be replays
REFUSAL_LINES_PER_MINUTE = 10
_MAX_TIMESTAMP_DIGITS = 12  # seconds since 1970 fit in 10 digits for centuries

log = logging.getLogger("codebot.slack.guard")


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: the HTTP status and a short reason (no user text)."""

    status: int
    reason: str

    def response(self) -> web.Response:
        """The HTTP answer: status and a tiny JSON body, the same shape as bolt's 401."""
        return web.json_response({"error": self.reason}, status=self.status)


class SlackRequestGuard:
    """Checks one aiohttp request; returns the bolt request to dispatch, or a refusal."""

    def __init__(
        self,
        signing_secret: str,
        *,
        clock: Callable[[], float] = time.time,
        refusal_log: RateLimitedLog | None = None,
    ) -> None:
        self._secret = signing_secret.encode()
        self._clock = clock
        self._refusals = refusal_log or RateLimitedLog(log, per_window=REFUSAL_LINES_PER_MINUTE)

    async def admit(self, request: web.Request) -> AsyncBoltRequest | web.Response:
        """The verified request for bolt, or the 4xx response to send (logged, bounded)."""
        result = await self._check(request)
        if isinstance(result, Refusal):
            self._refusals.warning(
                "refused slack request: %d %s (%s bytes declared, from %s)",
                result.status,
                result.reason,
                safe(request.content_length if request.content_length is not None else "?"),
                safe(request.remote or "?", 60),
            )
            return result.response()
        return AsyncBoltRequest(
            body=result,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]  # bolt reads any mapping
        )

    async def _check(self, request: web.Request) -> str | Refusal:
        declared = request.content_length
        if declared is not None and declared > MAX_BODY_BYTES:
            return Refusal(413, "request body too large")
        raw = await _read_bounded(request, MAX_BODY_BYTES)
        if raw is None:
            return Refusal(413, "request body too large")
        refusal = self._verify(request, raw)
        if refusal is not None:
            return refusal
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Refusal(400, "request body is not UTF-8")
        if not _parses_like_bolt(text, request.headers.get("Content-Type")):
            return Refusal(400, "malformed request body")
        return text

    def _verify(self, request: web.Request, raw: bytes) -> Refusal | None:
        stamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= _MAX_TIMESTAMP_DIGITS):
            return Refusal(401, "invalid request")
        if abs(self._clock() - int(stamp)) > MAX_CLOCK_SKEW_SECONDS:
            return Refusal(401, "invalid request")
        expected = (
            "v0="
            + hmac.new(
                self._secret, b"v0:" + stamp.encode() + b":" + raw, hashlib.sha256
            ).hexdigest()
        )
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            return Refusal(401, "invalid request")
        return None


async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it passes `limit` bytes (read no further than that)."""
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _parses_like_bolt(text: str, content_type: str | None) -> bool:
    """Whether bolt's `parse_body` will turn `text` into a dict (it raises or misreads
    otherwise): a JSON object, or a form, whose `payload` (if any) is a JSON object."""
    if not text:
        return True
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json" or text.startswith("{"):
        return _is_json_object(text)
    try:
        fields = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return False
    payload = dict(fields).get("payload") if "payload" in text else None
    return payload is None or _is_json_object(payload)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (ValueError, RecursionError):  # bad JSON, or nesting deep enough to overflow
        return False


__all__ = ["MAX_BODY_BYTES", "MAX_CLOCK_SKEW_SECONDS", "Refusal", "SlackRequestGuard"]
