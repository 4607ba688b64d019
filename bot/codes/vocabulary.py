"""Search vocabulary from official sources: words that point to codes their titles lack.

Two kinds of knowledge feed the search index (`bot.codes.search_index`):

* `IndexTerm`: an official index path that points to codes ("Appendectomy, see Resection,
  Appendix" -> ICD-10-PCS `0DTJ`; Table of Drugs "Acetaminophen, Poisoning Accidental" ->
  `T39.1X1`). `target` is a code key prefix: every code whose key starts with it is meant
  (`0DTJ` -> 0DTJ0ZZ, 0DTJ4ZZ ...; `T391X1` -> T39.1X1A/D/S), which also follows a code that
  has since gained children. The words of the path that a code's title lacks become that
  code's *index words* in the search index.
* `Rewrite`: a phrase the sources say means other words ("Hallux" -> "1st Toe" from the PCS
  body part key, brand "Prolia" -> generic "denosumab", "lap" -> "percutaneous endoscopic").
  The engine treats rewrites like `data/synonyms.tsv` entries (query variants).

Each reader lives under `bot/codes/sources/` with its provenance in `data/README.md`;
`load_vocabulary` runs them all. A missing source file fails the build with its name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class IndexTerm:
    """An official index path pointing to the codes whose keys start with `target`."""

    source: str  # short source name shown by --explain: "PCS index", "Table of Drugs" ...
    term: str  # the path as the source writes it, levels joined by ", "
    system: str  # icd10cm | icd10pcs | hcpcs
    target: str  # a code key prefix (upper case, no dot): "0DTJ", "T391X1", "C5041"
    # The source itself points below the code ("C50.41-": pick a child; PCS table prefixes).
    children: bool = False


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A phrase that, per an official source, means other words."""

    source: str
    phrase: str
    expansion: str
    # A proper name (a brand): dropped when every word of it is already a word of the code
    # titles, so a brand that is also a common word ("Always", "Care") cannot hijack a query.
    name: bool = False


@dataclass
class Vocabulary:
    """Everything the vocabulary readers produced, and one report line per source."""

    terms: list[IndexTerm] = field(default_factory=list)
    rewrites: list[Rewrite] = field(default_factory=list)
    report: list[str] = field(default_factory=list)

    def extend(self, other: Vocabulary) -> None:
        """Add another reader's output to this one."""
        self.terms.extend(other.terms)
        self.rewrites.extend(other.rewrites)
        self.report.extend(other.report)


VocabularyReader = Callable[[], Vocabulary]


def default_readers() -> list[tuple[str, VocabularyReader]]:
    """The vocabulary sources read by every build, as (name, reader) pairs."""
    from bot.codes.sources import brand_names, cm_tables, icd9_terms, pcs_definitions, pcs_index

    return [
        ("ICD-10-PCS Index", pcs_index.load),
        ("ICD-10-PCS Definitions", pcs_definitions.load),
        ("ICD-10-CM tables", cm_tables.load),
        ("FDA brand names", brand_names.load),
        ("ICD-9-CM titles (GEMs)", icd9_terms.load),
    ]


def load_vocabulary(
    readers: Iterable[tuple[str, VocabularyReader]] | None = None,
    progress: Callable[[str], None] = print,
) -> Vocabulary:
    """Run every vocabulary reader; report what each produced and how long it took."""
    out = Vocabulary()
    for name, reader in readers if readers is not None else default_readers():
        started = time.perf_counter()
        part = reader()
        out.extend(part)
        progress(
            f"  vocabulary {name}: {len(part.terms):,} index terms, {len(part.rewrites):,}"
            f" rewrites in {time.perf_counter() - started:.1f}s"
        )
    return out


def clean_text(text: str) -> str:
    """Collapse whitespace of a source string."""
    return " ".join(text.split())
