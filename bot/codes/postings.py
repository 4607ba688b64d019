"""Posting lists as sorted numpy arrays, and the set operations the search engine needs.

A posting list is an ascending `uint32` array of internal document numbers, exactly as the
index stores it (`bot.codes.search_index`), so decoding is a zero-copy view of the blob.
Because internal numbers follow the static "generality" prior, the first documents of any
filtered list are the best ones by that prior: the engine takes prefixes instead of
sorting. Membership of many documents in a list is a binary search per document
(`numpy.searchsorted`), which is what makes scoring a candidate set cheap in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

DocArray = npt.NDArray[np.uint32]
Mask = npt.NDArray[np.bool_]

EMPTY: DocArray = np.zeros(0, dtype=np.uint32)
FIRST_CHUNK = 2048  # documents filtered at a time while looking for the first n common ones


@dataclass(frozen=True)
class Postings:
    """Decoded posting lists of one token (each ascending): documents with the token in the
    title, only in the short title or inclusion terms (`other`), only through an official
    index term (`vocab`), and all of them (`every`)."""

    title: DocArray
    other: DocArray
    vocab: DocArray
    every: DocArray
    df: int


def decode(df: int, title: bytes, other: bytes, vocab: bytes) -> Postings:
    """Postings from the index's three blobs (native uint32, ascending, disjoint)."""
    t = np.frombuffer(title, dtype=np.uint32)
    o = np.frombuffer(other, dtype=np.uint32) if other else EMPTY
    v = np.frombuffer(vocab, dtype=np.uint32) if vocab else EMPTY
    if len(o) or len(v):
        every = np.concatenate((t, o, v))
        every.sort(kind="stable")
    else:
        every = t
    return Postings(t, o, v, every, int(df))


SMALL_SHARE = 8  # `union`: lists this many times shorter than the longest are inserted


def member(postings: DocArray, docs: DocArray) -> Mask:
    """For each of `docs`, is it in the ascending array `postings`?"""
    if not len(postings) or not len(docs):
        return np.zeros(len(docs), dtype=np.bool_)
    # An index past the end is clipped to the last entry, which is then simply unequal.
    found: Mask = postings.take(np.searchsorted(postings, docs), mode="clip") == docs
    return found


def contains(postings: DocArray, doc: int) -> bool:
    """Is the single document `doc` in `postings`?"""
    at = int(np.searchsorted(postings, doc))
    return at < len(postings) and int(postings[at]) == doc


def union(arrays: Sequence[DocArray]) -> DocArray:
    """Ascending union of posting arrays."""
    if len(arrays) == 1:
        return arrays[0]
    kept = [a for a in arrays if len(a)]
    if not kept:
        return EMPTY
    if len(kept) == 1:
        return kept[0]
    kept.sort(key=len)
    big = kept[-1]
    rest = kept[0] if len(kept) == 2 else _sorted_unique(np.concatenate(kept[:-1]))
    if len(rest) * SMALL_SHARE < len(big):
        # A common word and a rare form of it ("fracture" and "fractured"): insert the few
        # new documents into the long list rather than sort both again.
        new = rest[~member(big, rest)]
        out: DocArray = np.insert(big, np.searchsorted(big, new), new) if len(new) else big
        return out
    out = _sorted_unique(np.concatenate(kept))
    return out


def _sorted_unique(merged: DocArray) -> DocArray:
    """`merged` (a fresh array: sorted in place) without repeats. By hand: np.unique's first
    call imports numpy.ma, 28-100 ms inside somebody's query."""
    merged.sort()
    keep = np.empty(len(merged), dtype=np.bool_)
    keep[0] = True
    np.not_equal(merged[1:], merged[:-1], out=keep[1:])
    out: DocArray = merged[keep]
    return out


def first_common(
    lists: Sequence[DocArray], allowed: Mask | None, n: int, chunk: int = FIRST_CHUNK
) -> DocArray:
    """The `n` smallest documents (the best by the prior) in every one of `lists` and
    `allowed` (a mask over all documents, or None). Filters the rarest list a chunk at a
    time and stops once `n` are found: common words never cost a full intersection."""
    if not lists or n <= 0:
        return EMPTY
    order = sorted(range(len(lists)), key=lambda j: len(lists[j]))
    rarest = lists[order[0]]
    others = [lists[j] for j in order[1:]]
    found: list[DocArray] = []
    got = 0
    start = 0
    while start < len(rarest) and got < n:
        part = rarest[start : start + chunk]
        start += chunk
        chunk *= 2  # few matches so far: look further at a time
        for other in others:
            part = part[member(other, part)]
            if not len(part):
                break
        if allowed is not None and len(part):
            part = part[allowed[part]]
        if len(part):
            found.append(part)
            got += len(part)
    if not found:
        return EMPTY
    out = found[0] if len(found) == 1 else np.concatenate(found)
    return out[:n]
