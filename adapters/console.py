"""Terminal chat: the embedded default when no Slack or Discord token is set.

Reads lines from stdin (with readline history when it is a terminal), runs each through the
real `LookupService`, prints plain text. End of input (Ctrl-D, or a closed pipe) exits 0.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import getpass
import sys
import uuid
from pathlib import Path
from typing import TextIO

from bot.app import open_code_data, open_service
from bot.codes.build import database_status
from bot.config import Settings
from bot.model import Request, UserRef
from bot.render import render_text

HISTORY_FILE = Path.home() / ".codebot_history"
PROMPT = "codebot> "
EXIT_WORDS = frozenset({"exit", "quit", ":q"})


def console_request(text: str, *, user: str, team: str, admin: bool) -> Request:
    """A chat Request from the local terminal user."""
    return Request(
        user=UserRef(platform="console", tenant_id=team, user_id=user, display_name=user),
        text=text,
        channel_id="console",
        is_admin=admin,
        request_id=f"console-{uuid.uuid4().hex}",
    )


def banner(settings: Settings) -> str:
    """Which code sets and releases are loaded, and how to start."""
    open_code_data(settings)  # fails early with a clear message when the DB is missing
    loaded = ", ".join(
        f"{status.label} {status.release}" for status in database_status(settings.codes_db)
    )
    return (
        f"codebot console — code sets: {loaded}.\n"
        "Type a code (E11.9), words (knee brace) or `help`. Ctrl-D or `exit` quits."
    )


def _enable_history() -> None:
    try:
        import readline
    except ImportError:  # not on every platform; the console works without it
        return
    with contextlib.suppress(OSError):
        readline.read_history_file(HISTORY_FILE)
    readline.set_history_length(1000)
    atexit.register(_save_history)


def _save_history() -> None:
    import readline

    with contextlib.suppress(OSError):
        readline.write_history_file(HISTORY_FILE)


async def run_console(
    settings: Settings,
    *,
    user: str,
    team: str,
    admin: bool,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    """Run the chat loop until end of input. Returns the exit status."""
    stdin = _tolerant(stdin or sys.stdin)
    stdout = _tolerant(stdout or sys.stdout)
    interactive = stdin.isatty()
    if interactive:
        _enable_history()
    user = user or getpass.getuser()
    print(banner(settings), file=stdout, flush=True)
    async with open_service(settings) as service:
        while True:
            try:
                line = await _read_line(stdin, interactive)
            except (EOFError, KeyboardInterrupt):
                break
            if line is None:
                break
            text = line.strip()
            if not text:
                continue
            if text.lower() in EXIT_WORDS:
                break
            request = console_request(text, user=user, team=team, admin=admin)
            reply = await service.handle(request)
            print(render_text(reply), file=stdout, end="\n\n", flush=True)
            await service.delivered(request)
    if interactive:
        print(file=stdout)
    return 0


def _tolerant(stream: TextIO) -> TextIO:
    """The stream with undecodable/unencodable characters replaced instead of raising: a
    stray byte that is not UTF-8 (a pasted Latin-1 line) must not end the session and lose
    the rest of the input. Streams that cannot be reconfigured are used as they are."""
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, OSError):
            reconfigure(errors="replace")
    return stream


async def _read_line(stdin: TextIO, interactive: bool) -> str | None:
    """One line, or None at end of input. `input()` gives readline editing on a terminal."""
    if interactive and stdin is sys.stdin:
        return await asyncio.to_thread(input, PROMPT)
    line = await asyncio.to_thread(stdin.readline)
    return line if line else None
