"""`codebot coding WORDS… [--json] [--date D]`: the knowledge commands from the shell.

The same grammar as the chat (`codebot coding drg 291`, `codebot coding group I50.20 N17.9
age 70`, `codebot coding crosswalk E11.9`, `codebot coding 250.00`, `codebot coding
guidelines sepsis`), read from the code database only and not metered, like `lookup`.
`--json` prints the answer's data: every field the text shows.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(sub: Any, day: Callable[[str], date]) -> None:
    """Register the `coding` subcommand on the CLI's subparsers."""
    coding = sub.add_parser(
        "coding", help="MS-DRG, grouping, ICD-9 crosswalks, Official Guidelines"
    )
    coding.add_argument("words", nargs="+", help="e.g. drg 291 | group I50.20 N17.9 age 70")
    coding.add_argument("--json", action="store_true")
    coding.add_argument("--date", type=day, help="date of service (default today)")


def run(args: argparse.Namespace, codes_db: Path, today: date) -> int:
    """Answer one knowledge command; exit 2 when the words are not one."""
    from bot.codes.catalog import CodeCatalog
    from bot.codes.knowledge import KnowledgeBase
    from bot.commands import CommandKind, parse
    from bot.knowledge_answers import KnowledgeAnswers

    command = parse(" ".join(args.words))
    if command.kind is not CommandKind.KNOWLEDGE:
        print(command.text or "Not a coding-knowledge command (see `codebot coding --help`).")
        return EXIT_USAGE
    knowledge = KnowledgeBase.open(codes_db)
    catalog = CodeCatalog.open(codes_db)
    try:
        answer = KnowledgeAnswers(knowledge, catalog).answer(
            command.args, args.date or command.as_of or today
        )
    finally:
        knowledge.close()
        catalog.close()
    if args.json:
        payload = {"found": answer.found, "heading": answer.title, **answer.data}
        if not answer.found:
            payload["error"] = answer.text
        print(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        print(answer.text)
    return EXIT_OK
