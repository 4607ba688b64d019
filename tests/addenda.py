"""CMS addenda files: the counts their closing summary states (what the tests expect)."""

from __future__ import annotations

import re


def summary_counts(text: str) -> dict[str, int]:
    """{"added", "deleted", "revised"} as the addenda's last "Codes" summary states them."""
    codes = text[text.rindex("Codes") :]
    return {
        kind: int(re.search(rf"(\d+) {word}", codes).group(1))  # type: ignore[union-attr]
        for kind, word in (
            ("added", "additions"),
            ("deleted", "deletions"),
            ("revised", "revisions"),
        )
    }
