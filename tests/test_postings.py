"""bot.codes.postings: the numpy set operations under the search engine, checked against
plain Python sets on the real index's posting lists."""

from __future__ import annotations

import sqlite3
from array import array
from pathlib import Path

import numpy as np
import pytest

from bot.codes.postings import EMPTY, contains, decode, first_common, member, union


def _raw(conn: sqlite3.Connection, token: str) -> tuple[int, bytes, bytes, bytes]:
    row = conn.execute(
        "SELECT df, title_ids, other_ids, vocab_ids FROM search_postings WHERE token = ?",
        (token,),
    ).fetchone()
    assert row is not None, token
    return int(row[0]), bytes(row[1]), bytes(row[2]), bytes(row[3])


def _ints(blob: bytes) -> list[int]:
    out = array("I")
    out.frombytes(blob)
    return list(out)


@pytest.fixture(scope="module")
def conn(codes_db_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{codes_db_path}?mode=ro", uri=True)


@pytest.fixture(scope="module")
def common_tokens(conn: sqlite3.Connection) -> list[str]:
    """A spread of tokens: the commonest, some with inclusion-term and index-term postings."""
    rows = conn.execute(
        "SELECT token FROM search_postings WHERE length(other_ids) > 0 AND length(vocab_ids) > 0"
        " ORDER BY df DESC LIMIT 6"
    ).fetchall()
    return [r[0] for r in rows]


def test_decode_matches_the_stored_lists(
    conn: sqlite3.Connection, common_tokens: list[str]
) -> None:
    for token in common_tokens:
        df, title, other, vocab = _raw(conn, token)
        post = decode(df, title, other, vocab)
        assert post.title.tolist() == _ints(title)
        assert post.other.tolist() == _ints(other)
        assert post.vocab.tolist() == _ints(vocab)
        assert post.every.tolist() == sorted(
            set(_ints(title)) | set(_ints(other)) | set(_ints(vocab))
        )
        assert post.df == df


def test_member_contains_and_union_agree_with_sets(
    conn: sqlite3.Connection, common_tokens: list[str]
) -> None:
    first = decode(*_raw(conn, common_tokens[0]))
    second = decode(*_raw(conn, common_tokens[1]))
    probe = second.every[:5000]
    expected = set(first.every.tolist())
    assert member(first.every, probe).tolist() == [d in expected for d in probe.tolist()]
    assert member(EMPTY, probe).tolist() == [False] * len(probe)
    assert member(first.every, EMPTY).tolist() == []
    some = int(first.every[len(first.every) // 2])
    assert contains(first.every, some)
    assert not contains(first.every, int(first.every[-1]) + 1)
    both = union([first.every, second.every])
    assert both.tolist() == sorted(expected | set(second.every.tolist()))


def test_union_of_a_long_list_and_short_ones_inserts_them(
    conn: sqlite3.Connection, common_tokens: list[str]
) -> None:
    # The short lists (a few documents in, some out of the long one) take the insert path.
    long = decode(*_raw(conn, common_tokens[0])).every
    inside = long[:: max(1, len(long) // 5)][:5]
    outside = np.setdiff1d(np.arange(0, int(long[-1]) + 50, 7, dtype=np.uint32), long)[:9]
    short = np.union1d(inside, outside[:4]).astype(np.uint32)
    other = outside[4:]
    assert len(short) * 8 < len(long) and len(other) * 8 < len(long)
    for parts in ([long, short], [short, long], [long, short, other], [long, inside]):
        got = union(parts)
        assert got.tolist() == sorted(set().union(*(p.tolist() for p in parts)))
        assert got.dtype == long.dtype


@pytest.mark.parametrize("n", [1, 40, 400, 10**6])
def test_first_common_is_the_smallest_of_the_intersection(
    conn: sqlite3.Connection, common_tokens: list[str], n: int
) -> None:
    commonest = conn.execute("SELECT token FROM search_postings ORDER BY df DESC LIMIT 8")
    # The commonest words (PCS axis words among them) share thousands of codes.
    tokens = [r[0] for r in commonest][:3]
    lists = [decode(*_raw(conn, t)).every for t in tokens]
    sets = [set(a.tolist()) for a in lists]
    everything = sorted(sets[0] & sets[1] & sets[2])
    assert everything, "the commonest tokens should share documents"
    assert first_common(lists, None, n).tolist() == everything[:n]
    # A mask over all documents (as the engine's code-set filter) applies too.
    size = int(max(int(a[-1]) for a in lists)) + 1
    allowed = np.zeros(size, dtype=np.bool_)
    allowed[::2] = True
    assert (
        first_common(lists, allowed, n, chunk=64).tolist()
        == [d for d in everything if d % 2 == 0][:n]
    )
    assert first_common([], None, n).tolist() == []
