"""The `codebot` command (DESIGN.md §8).

Exit status: 0 for answers (including "not found"), 2 for usage errors, 1 when something
the operator must fix is missing (no code database, bad configuration).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import ConfigError, Settings
from bot.logsafe import audit, configure_logging

if TYPE_CHECKING:
    from bot.codes.catalog import CodeCatalog
    from bot.codes.search import SearchEngine

log = logging.getLogger("codebot")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
MAX_SEARCH_LIMIT = 100


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _day(text: str) -> date:
    """An argparse type: a date of service (2025-03-01 or 03/01/2025)."""
    from bot.as_of import USAGE, parse_day

    day = parse_day(text)
    if day is None:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a date. {USAGE}")
    return day


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="codebot", description="Medical code lookup chat bot")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="build and inspect the code database")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    build = data_sub.add_parser("build", help="build the code database from data/")
    build.add_argument("--output", type=Path, help="where to write it (default: settings)")
    data_sub.add_parser("status", help="code sets, releases and counts")
    cpt = data_sub.add_parser("import-cpt", help="import a licensed CPT® file")
    cpt.add_argument("file", type=Path)

    lookup = sub.add_parser("lookup", help="look codes up")
    lookup.add_argument("codes", nargs="+")
    lookup.add_argument("--json", action="store_true")
    lookup.add_argument(
        "--date", type=_day, help="date of service, e.g. 2025-03-01 (default today)"
    )

    from bot.knowledge_cli import add_parser as add_coding_parser

    add_coding_parser(sub, _day)

    search = sub.add_parser("search", help="search codes by words")
    search.add_argument("query", nargs="*")
    search.add_argument("--system", choices=["icd10cm", "icd10pcs", "hcpcs", "cpt"])
    search.add_argument("--limit", type=int, default=10)
    search.add_argument("--batch", type=Path, help="file with one query per line")
    search.add_argument("--json", action="store_true", help="JSON lines; each hit says why")
    search.add_argument(
        "--explain",
        action="store_true",
        help="say why each result matched (words, synonyms, index terms, brand names)",
    )
    search.add_argument(
        "--date", type=_day, help="date of service, e.g. 2025-03-01 (default today)"
    )

    changes = sub.add_parser("changes", help="what a release added, deleted and revised")
    changes.add_argument("system", nargs="?", default="icd10cm", help="icd10cm, icd10pcs, hcpcs")
    changes.add_argument("release", nargs="?", default="", help="FY2027, 2026-01 (default: today)")
    changes.add_argument("--date", type=_day, help="the release in force on this date")
    changes.add_argument("--json", action="store_true")

    history = sub.add_parser("history", help="a code's timeline across the releases held")
    history.add_argument("code")

    for name, help_text in (("ask", "one chat turn"), ("console", "interactive chat")):
        chat = sub.add_parser(name, help=help_text)
        if name == "ask":
            chat.add_argument("text")
        chat.add_argument("--user", default="console-user")
        chat.add_argument("--team", default="local")
        chat.add_argument("--admin", action="store_true")

    serve = sub.add_parser("serve", help="run a chat platform adapter")
    serve_sub = serve.add_subparsers(dest="platform", required=True)
    slack = serve_sub.add_parser("slack")
    slack.add_argument("--port", type=int, default=3000)
    slack.add_argument("--host", default="0.0.0.0")
    discord = serve_sub.add_parser("discord")
    discord.add_argument("--sync", action="store_true", help="register slash commands first")
    discord.add_argument("--guild", type=int, help="with --sync: register to one server only")
    discord_http = serve_sub.add_parser(
        "discord-http", help="Discord interactions endpoint (POST /discord/interactions)"
    )
    discord_http.add_argument("--port", type=int, default=8080)
    discord_http.add_argument("--host", default="0.0.0.0")

    discord_cmd = sub.add_parser("discord", help="Discord maintenance")
    discord_sub = discord_cmd.add_subparsers(dest="discord_command", required=True)
    sync = discord_sub.add_parser("sync", help="register the /code command")
    sync.add_argument("--guild", type=int)

    admin = sub.add_parser("admin", help="data requests")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    export = admin_sub.add_parser("export", help="a team's data as JSON")
    export.add_argument("--team", required=True)
    export.add_argument("--platform", default=None)
    purge = admin_sub.add_parser("purge", help="delete a user's data")
    purge.add_argument("--user", required=True)
    purge.add_argument("--platform", default=None)

    sub.add_parser("run", help="start Slack, Discord or the console, by configured tokens")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `codebot` console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
    except ConfigError as error:
        print(f"codebot: configuration error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    # One-shot and interactive commands keep the terminal for answers: warnings only,
    # unless CODEBOT_LOG_LEVEL is set. Servers log at INFO by default.
    default_level = "INFO" if args.command in ("serve", "run") else "WARNING"
    level = settings.log_level or default_level
    if level not in logging.getLevelNamesMapping():
        level = default_level
    configure_logging(level)
    if settings.log_format == "json":
        from bot.json_logs import use_json_logs

        use_json_logs()
    from bot.app import CodeDatabaseMissing
    from bot.state import StateDatabaseUnavailable

    try:
        return _run(args, settings)
    except (CodeDatabaseMissing, ConfigError, StateDatabaseUnavailable) as error:
        print(f"codebot: {error}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_OK


def _run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "data":
        return _data(args, settings)
    if command == "lookup":
        return _lookup(args, settings)
    if command == "search":
        return _search(args, settings)
    if command == "changes":
        return _changes(args, settings)
    if command == "history":
        return _history(args, settings)
    if command == "coding":
        from bot.app import open_code_data
        from bot.clock import clock_from_settings
        from bot.knowledge_cli import run as run_coding

        open_code_data(settings)  # the same "no code database" answer as lookup
        return run_coding(args, settings.codes_db, clock_from_settings(settings.today)())
    if command == "ask":
        return asyncio.run(_ask(args, settings))
    if command == "console":
        from adapters.console import run_console

        return asyncio.run(run_console(settings, user=args.user, team=args.team, admin=args.admin))
    if command == "serve":
        return _serve(args.platform, args, settings)
    if command == "discord":
        from adapters.discord_bot import sync_commands

        names = asyncio.run(sync_commands(settings, guild_id=args.guild))
        where = f"server {args.guild}" if args.guild else "all servers (global)"
        print(f"Registered {', '.join('/' + name for name in names)} for {where}.")
        return EXIT_OK
    if command == "admin":
        return _admin(args, settings)
    if command == "run":
        return _run_default(settings)
    return EXIT_USAGE


# ------------------------------------------------------------------ data


def _data(args: argparse.Namespace, settings: Settings) -> int:
    if args.data_command == "build":
        from bot.codes.build import build_code_db

        output = args.output or settings.codes_db
        build_code_db(output, progress=_progress)
        return EXIT_OK
    if args.data_command == "status":
        from bot.codes.build import database_status

        if not settings.codes_db.is_file():
            print(f"No code database at {settings.codes_db}. Run `codebot data build`.")
            return EXIT_FAILURE
        from bot.codes.integrity import check_code_db, describe

        problems = check_code_db(settings.codes_db, thorough=True)
        if problems:
            print(f"codebot: {describe(settings.codes_db, problems)}", file=sys.stderr)
            return EXIT_FAILURE
        from bot.clock import clock_from_settings
        from bot.codes.releases import database_releases, describe_releases

        for status in database_status(settings.codes_db):
            counts = ", ".join(f"{name} {value:,}" for name, value in status.counts.items())
            print(f"{status.label:<16} {status.release:<24} {counts}")
        today = clock_from_settings(settings.today)()
        for line in describe_releases(database_releases(settings.codes_db), today):
            print(line)
        from bot.codes.knowledge_build import knowledge_status

        sources = knowledge_status(settings.codes_db)
        if sources:
            print(f"Coding knowledge sources ({len(sources)}):")
        for source in sources:
            counts = ", ".join(f"{name} {value:,}" for name, value in source.counts.items())
            print(f"  {source.label:<24} {source.release:<40} {counts} [{source.source}]")
        return EXIT_OK
    from bot.codes.cpt_import import CptImportError, import_cpt

    if not args.file.is_file():
        print(f"codebot: no such file: {args.file}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = import_cpt(settings.codes_db, args.file, progress=_progress)
    except CptImportError as error:
        print(f"codebot: {error}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"Imported {result.imported:,} CPT® codes; rejected {len(result.rejected):,} lines.")
    for line_no, reason in result.rejected[:20]:
        print(f"  line {line_no}: {reason}")
    if len(result.rejected) > 20:
        print(f"  … and {len(result.rejected) - 20} more")
    return EXIT_OK


# ------------------------------------------------------------------ lookup / search


def _code_data(settings: Settings) -> tuple[CodeCatalog, SearchEngine]:
    from bot.app import open_code_data

    return open_code_data(settings)


def _lookup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.clock import clock_from_settings
    from bot.codes.normalize import shape_of
    from bot.commands import CodeToken, clean_text
    from bot.json_output import card_json, cpt_info_json, not_found_json
    from bot.model import CodeCard, CptInfo, NotFound
    from bot.render import render_item
    from bot.resolver import CodeResolver

    catalog, _ = _code_data(settings)
    words = clean_text(" ".join(args.codes)).split(" ")[:50]
    tokens = [CodeToken(word, shape_of(word)) for word in words if word]
    day = args.date or clock_from_settings(settings.today)()
    items = CodeResolver(catalog).items(tokens, day)
    from bot.codes.knowledge import KnowledgeBase
    from bot.knowledge_cards import with_coding

    knowledge = KnowledgeBase.open(settings.codes_db)
    try:
        items = with_coding(items, knowledge, day)
    finally:
        knowledge.close()
    if args.json:
        out: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, CodeCard):
                out.append(card_json(item))
            elif isinstance(item, CptInfo):
                out.append(cpt_info_json(item))
            elif isinstance(item, NotFound):
                out.append(not_found_json(item))
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        print("\n\n".join(render_item(item) for item in items) or "No code given.")
    return EXIT_OK


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from bot.commands import clean_text
    from bot.json_output import hit_json
    from bot.model import CodeSystem

    if not 1 <= args.limit <= MAX_SEARCH_LIMIT:
        print(f"codebot: --limit must be between 1 and {MAX_SEARCH_LIMIT}", file=sys.stderr)
        return EXIT_USAGE
    catalog, search = _code_data(settings)
    system = CodeSystem(args.system) if args.system else None
    if system is CodeSystem.CPT and not catalog.has_cpt():
        print("No licensed CPT® file is loaded (codebot data import-cpt FILE).", file=sys.stderr)
    if args.batch:
        if not args.batch.is_file():
            print(f"codebot: no such file: {args.batch}", file=sys.stderr)
            return EXIT_USAGE
        with args.batch.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                query = clean_text(line)
                if not query or query.startswith("#"):
                    continue
                hits = search.search(
                    query, system=system, limit=args.limit, explain=args.json or args.explain
                )
                if args.json:
                    print(
                        json.dumps(
                            {"query": query, "results": [hit_json(h) for h in hits]},
                            ensure_ascii=False,
                        )
                    )
                else:
                    print(f"{query}\t" + " ".join(hit.code for hit in hits))
        return EXIT_OK
    from bot.clock import clock_from_settings
    from bot.search_validity import OVERFETCH, valid_first

    query = clean_text(" ".join(args.query))[:500]
    explain = args.json or args.explain
    day = args.date or clock_from_settings(settings.today)()
    found = (
        search.search(query, system=system, limit=args.limit * OVERFETCH, explain=explain)
        if query
        else []
    )
    # the release in force on the date: deleted/terminated codes after valid ones
    hits = valid_first(found, day, catalog.valid_on, args.limit)
    if args.json:
        print(
            json.dumps(
                {"query": query, "results": [hit_json(h) for h in hits]},
                indent=2,
                ensure_ascii=False,
            )
        )
    elif not hits:
        print(f"No codes match \u201c{query}\u201d.")
    else:
        for number, hit in enumerate(hits, start=1):
            print(f"{number:>2}. {hit.code:<9} {hit.title}  [{hit.system.label}]")
            for line in hit.why:
                print(f"      - {line}")
    return EXIT_OK


def _changes(args: argparse.Namespace, settings: Settings) -> int:
    """`codebot changes [SYSTEM] [RELEASE] [--json]`: every change of a release."""
    from bot.clock import clock_from_settings
    from bot.codes.timeline import changes_text
    from bot.commands import parse

    named = parse(f"changes {args.system}")
    system = named.system
    if system is None:
        print("codebot: the code set is icd10cm, icd10pcs or hcpcs", file=sys.stderr)
        return EXIT_USAGE
    catalog, _ = _code_data(settings)
    day = args.date or clock_from_settings(settings.today)()
    found = catalog.changes(system.value, str(args.release), day, full=True)
    if found is None:
        held = ", ".join(r.release for r in catalog.calendar.releases(system.value))
        print(f"codebot: no {system.label} release {args.release!r}; held: {held}", file=sys.stderr)
        return EXIT_USAGE
    if not args.json:
        print(changes_text(found, system.label, full=True))
        return EXIT_OK
    release = found.release
    out = {
        "system": system.value,
        "release": release.release,
        "title": release.title,
        "effective_from": release.effective_from.isoformat(),
        "effective_to": release.effective_to.isoformat() if release.effective_to else None,
        "previous": found.previous.release if found.previous else None,
        "counts": found.counts,
        "changes": [
            {
                "change": e.change,
                "code": e.code,
                "title": e.title,
                **({"old_title": e.old_title} if e.old_title else {}),
                **({"replaced_by": e.replaced_by.split()} if e.replaced_by else {}),
            }
            for e in found.entries
        ],
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return EXIT_OK


def _history(args: argparse.Namespace, settings: Settings) -> int:
    """`codebot history CODE`: the code's timeline across the releases held."""
    catalog, _ = _code_data(settings)
    found = catalog.history(str(args.code)[:20])
    if not found:
        print(f"{str(args.code)[:20]} is not a code in any release held.")
        return EXIT_OK
    print("\n\n".join("\n".join(lines) for _card, lines in found))
    return EXIT_OK


# ------------------------------------------------------------------ chat


async def _ask(args: argparse.Namespace, settings: Settings) -> int:
    from adapters.console import console_request
    from bot.app import open_service
    from bot.render import render_text

    async with open_service(settings) as service:
        request = console_request(args.text, user=args.user, team=args.team, admin=args.admin)
        reply = await service.handle(request)
        print(render_text(reply))
        await service.delivered(request)
    return EXIT_OK


def _serve(platform: str, args: argparse.Namespace, settings: Settings) -> int:
    if platform == "slack":
        if not settings.slack_enabled:
            print(
                "codebot: set SLACK_BOT_TOKEN (or SLACK_CLIENT_ID + SLACK_CLIENT_SECRET for "
                "OAuth) and SLACK_SIGNING_SECRET (or SLACK_APP_TOKEN).",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        from adapters.runtime import run_server
        from adapters.slack_app import run_slack

        return run_server(run_slack(settings, host=args.host, port=args.port))
    if platform == "discord-http":
        from adapters.discord_http import run_discord_http
        from adapters.runtime import run_server

        return run_server(run_discord_http(settings, host=args.host, port=args.port))
    if not settings.discord_enabled:
        print("codebot: set DISCORD_TOKEN.", file=sys.stderr)
        return EXIT_FAILURE
    from adapters.discord_bot import run_discord
    from adapters.runtime import run_server

    return run_server(
        run_discord(
            settings, sync=getattr(args, "sync", False), guild_id=getattr(args, "guild", None)
        )
    )


def _admin(args: argparse.Namespace, settings: Settings) -> int:
    from bot.state.admin import export_team, purge_user

    if args.admin_command == "export":
        data = asyncio.run(export_team(settings, args.team, platform=args.platform))
        audit("export", team=args.team, platform=args.platform)
        print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return EXIT_OK
    removed = asyncio.run(purge_user(settings, args.user, platform=args.platform))
    audit("purge", user=args.user, platform=args.platform, rows=removed)
    print(f"Removed {removed} records of user {args.user}.")
    return EXIT_OK


def _run_default(settings: Settings) -> int:
    """`make run`: Slack if its tokens are set, else Discord, else the console."""
    if settings.slack_enabled:
        return _serve("slack", argparse.Namespace(host="0.0.0.0", port=3000), settings)
    if settings.discord_enabled:
        return _serve("discord", argparse.Namespace(sync=False), settings)
    from adapters.console import run_console

    return asyncio.run(run_console(settings, user="console-user", team="local", admin=False))


if __name__ == "__main__":
    raise SystemExit(main())
