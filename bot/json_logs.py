"""Optional JSON logs (`CODEBOT_LOG_FORMAT=json`): one JSON object per line.

For log shippers that index fields: time, level, logger, message and, for errors, the
traceback as one escaped string. `json.dumps` escapes control characters, so user text
inside a message can never start a line of its own (the same guarantee SafeFormatter gives
the text format).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

MAX_MESSAGE_CHARS = 2_000


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message"[, "error"]}` per record."""

    def format(self, record: logging.LogRecord) -> str:
        """One line of JSON."""
        message = record.getMessage()
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message[:MAX_MESSAGE_CHARS],
        }
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=True)


def use_json_logs() -> None:
    """Switch every root handler (set up by `configure_logging`) to JSON lines."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(JsonFormatter())
