"""Read the coding-knowledge tables for a card, as of a date of service.

`KnowledgeBase.facts(card, as_of)` answers what MS-DRG (CC/MCC, PDX exclusions, HAC, O.R.),
the Medicare Code Editor, CMS-HCC, the POA exempt list and the GEMs say about one code on
that date: the MS-DRG version in force (FY starts October 1, `.1` updates April 1), the HCC
payment year of the date. Results are cached per (code, date): cards repeat all day.
A database built before these tables existed simply yields no facts.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from bot.codes.drg_engine import CodeEdits, DrgEngine, DrgEngineError
from bot.codes.guideline_index import GuidelineIndex
from bot.codes.releases import ICD10_START
from bot.codes.sources.gems import icd9_display
from bot.knowledge_model import CodingFacts, CrosswalkCode, HccCategory
from bot.model import CodeCard, CodeSystem

MAX_EXCLUDED_SHOWN = 40  # principal diagnoses listed on a card; the total is always given
HCC_MODELS_SHOWN = ("V28", "V24", "ESRD V24", "RxHCC V08")
_CACHE_SIZE = 8192
# The MCE has age edits for four groups; name them by the range the engine reports.
_AGE_GROUPS = {(0, 0): "newborn", (0, 17): "pediatric", (15, 124): "adult"}


def age_edit_phrase(age_range: tuple[int, int]) -> str:
    """`adult (ages 15–124)`, `newborn (age 0)`, `maternity (ages 9–64)`…"""
    low, high = age_range
    group = _AGE_GROUPS.get(age_range) or ("maternity" if low > 0 and high < 124 else "")
    ages = f"age {low}" if low == high else f"ages {low}–{high}"
    return f"age edit: {group} only ({ages})" if group else f"age edit: {ages} only"


def mce_phrases(edits: CodeEdits) -> tuple[str, ...]:
    """The MCE edits of one code as short phrases for the card, most decisive first."""
    phrases: list[str] = []
    if edits.manifestation:
        phrases.append("manifestation: not allowed as principal diagnosis")
    if edits.unacceptable_principal:
        phrases.append("unacceptable as principal diagnosis")
    if edits.external_cause_principal:
        phrases.append("external cause: not allowed as principal diagnosis")
    if edits.questionable_admission:
        phrases.append("questionable admission as principal diagnosis")
    if edits.age_range is not None:
        phrases.append(age_edit_phrase(edits.age_range))
    if edits.sex:
        phrases.append(f"sex edit: {edits.sex} only")
    return tuple(phrases)


class KnowledgeBase:
    """Read-only access to the knowledge tables of a code database. Thread-safe."""

    def __init__(self, conn: sqlite3.Connection, engine: DrgEngine | None = None) -> None:
        """Wrap an open connection; use `KnowledgeBase.open(path)`."""
        self._conn = conn
        self._lock = threading.Lock()
        self._engine = engine or DrgEngine()
        self._cache: OrderedDict[tuple[str, str, str], CodingFacts | None] = OrderedDict()
        self.available = self._has_tables()
        self._versions: list[tuple[str, str]] = []  # (effective_from, version), newest first
        self._hcc_labels: dict[tuple[str, str], str] = {}
        self._hcc_years: list[int] = []
        self._definition_versions: list[str] = []  # versions with exclusions/O.R. lists
        if self.available:
            self._load_small_tables()
        self.guidelines = GuidelineIndex(conn, self._lock)

    @classmethod
    def open(cls, path: Path, engine: DrgEngine | None = None) -> KnowledgeBase:
        """Open the knowledge tables of the database at `path` read-only."""
        conn = sqlite3.connect(
            f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False
        )
        return cls(conn, engine)

    def close(self) -> None:
        """Close the connection and the native engine."""
        with self._lock:
            self._conn.close()
        self._engine.close()

    def warm_up(self) -> None:
        """Open the native engine now (servers: the first user should not wait ~50 ms)."""
        if self.available:
            self._engine.code_edits("R519", date.today())

    @property
    def engine(self) -> DrgEngine:
        """The shared grouper/MCE engine (for `/code group`)."""
        return self._engine

    def _has_tables(self) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kb_sources'"
        ).fetchone()
        return row is not None

    def _load_small_tables(self) -> None:
        self._versions = [
            (start, version)
            for start, version in self._conn.execute(
                "SELECT effective_from, version FROM drg_versions ORDER BY effective_from DESC"
            )
        ]
        self._hcc_labels = {
            (model, hcc): label
            for model, hcc, label in self._conn.execute("SELECT model, hcc, label FROM hcc_labels")
        }
        self._hcc_years = [
            year for (year,) in self._conn.execute("SELECT DISTINCT year FROM hcc_map ORDER BY 1")
        ]
        self._definition_versions = [
            version
            for (version,) in self._conn.execute(
                "SELECT DISTINCT version FROM drg_cc_exclusions ORDER BY version"
            )
        ]

    # ------------------------------------------------------------------ dates

    def drg_version_on(self, day: date) -> str:
        """The MS-DRG version in force for a discharge on `day` ('' before the oldest)."""
        iso = day.isoformat()
        for start, version in self._versions:
            if start <= iso:
                return version
        return ""

    def drg_versions(self) -> list[str]:
        """Every MS-DRG version in the database, oldest first."""
        return [version for _, version in reversed(self._versions)]

    def hcc_year_on(self, day: date) -> int:
        """The CMS-HCC payment year for `day`: its calendar year (0 before the years we
        have, so an old date of service gets no HCC; the newest year after them)."""
        if not self._hcc_years or day.year < self._hcc_years[0]:
            return 0
        return min(day.year, self._hcc_years[-1])

    def definitions_version(self, version: str) -> str:
        """The newest version up to `version` whose exclusion and O.R. lists we have.

        v44 (FY2027) has no published definitions file here; its lists come from v43.1.
        """
        candidates = [
            v for v in self._definition_versions if _version_key(v) <= _version_key(version)
        ]
        return max(candidates, key=_version_key) if candidates else ""

    # ------------------------------------------------------------------ facts

    def facts(self, card: CodeCard, as_of: date) -> CodingFacts | None:
        """The coding facts of one card on `as_of`, or None when there are none."""
        if not self.available or card.system not in (CodeSystem.ICD10CM, CodeSystem.ICD10PCS):
            return None
        cache_key = (card.system.value, card.code, as_of.isoformat())
        with self._lock:
            if cache_key in self._cache:
                self._cache.move_to_end(cache_key)
                return self._cache[cache_key]
        key = card.code.replace(".", "").upper()
        if as_of < ICD10_START:
            # before ICD-10 existed nothing but the way back to ICD-9 applies to the code
            with self._lock:
                direction = "10to9" if card.system is CodeSystem.ICD10CM else "9to10pcs"
                icd9 = self._crosswalk(direction, key, reverse=direction == "9to10pcs")
            facts = CodingFacts(as_of=as_of.isoformat(), icd9=icd9) if icd9 else None
        elif card.system is CodeSystem.ICD10CM:
            if card.billable:
                facts = self._cm_facts(key, card, as_of)
            else:
                # a category is not billed: only its chapter's guideline applies to it
                guideline = self.guidelines.for_card(card) if card.kind != "chapter" else None
                facts = (
                    CodingFacts(as_of=as_of.isoformat(), guideline=guideline) if guideline else None
                )
        else:
            facts = self._pcs_facts(key, as_of) if card.billable else None
        with self._lock:
            self._cache[cache_key] = facts
            if len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
        return facts

    def _cm_facts(self, key: str, card: CodeCard, as_of: date) -> CodingFacts | None:
        version = self.drg_version_on(as_of)
        severity = excl_group = hac = ""
        excluded: tuple[str, ...] = ()
        excluded_total = 0
        definitions = ""
        with self._lock:
            if version:
                row = self._conn.execute(
                    "SELECT level, excl_group, hac FROM drg_dx_severity"
                    " WHERE version = ? AND key = ?",
                    (version, key),
                ).fetchone()
                if row is not None:
                    severity, excl_group, hac = row
                    definitions = version if excl_group else self.definitions_version(version)
                    if not excl_group and definitions:
                        older = self._conn.execute(
                            "SELECT excl_group, hac FROM drg_dx_severity"
                            " WHERE version = ? AND key = ?",
                            (definitions, key),
                        ).fetchone()
                        if older is not None:
                            excl_group, hac = older
                    if excl_group:
                        pdx = self._conn.execute(
                            "SELECT pdx_keys FROM drg_cc_exclusions"
                            " WHERE version = ? AND excl_group = ?",
                            (definitions, excl_group),
                        ).fetchone()
                        keys = pdx[0].split() if pdx else []
                        excluded_total = len(keys)
                        excluded = tuple(_cm_display(k) for k in keys[:MAX_EXCLUDED_SHOWN])
            year = self.hcc_year_on(as_of)
            hcc_rows = self._conn.execute(
                "SELECT model, hcc FROM hcc_map WHERE year = ? AND key = ?", (year, key)
            ).fetchall()
            poa = (
                self._conn.execute("SELECT 1 FROM poa_exempt WHERE key = ?", (key,)).fetchone()
                is not None
            )
            icd9 = self._crosswalk("10to9", key)
        hcc = tuple(
            HccCategory(model, number, self._hcc_labels.get((model, number), ""))
            for model, number in sorted(
                hcc_rows,
                key=lambda r: (
                    HCC_MODELS_SHOWN.index(r[0]) if r[0] in HCC_MODELS_SHOWN else 99,
                    r[1],
                ),
            )
            if model in HCC_MODELS_SHOWN
        )
        try:
            mce = mce_phrases(self._engine.code_edits(key, as_of))
        except DrgEngineError:
            mce = ()
        guideline = self.guidelines.for_card(card)
        return CodingFacts(
            as_of=as_of.isoformat(),
            drg_version=version,
            severity=severity,
            cc_excluded_by=excluded,
            cc_excluded_total=excluded_total,
            cc_exclusions_version=definitions if excluded_total else "",
            hac=hac,
            mce=mce,
            hcc_year=year if hcc else 0,
            hcc=hcc,
            poa_exempt=poa,
            icd9=icd9,
            guideline=guideline,
        )

    def _pcs_facts(self, key: str, as_of: date) -> CodingFacts | None:
        version = self.drg_version_on(as_of)
        definitions = self.definitions_version(version) if version else ""
        with self._lock:
            row = self._conn.execute(
                "SELECT versions FROM drg_or_procedures WHERE key = ?", (key,)
            ).fetchone()
            icd9 = self._crosswalk("9to10pcs", key, reverse=True)
        or_procedure = None
        if definitions:
            or_procedure = row is not None and definitions in row[0].split()
        return CodingFacts(
            as_of=as_of.isoformat(),
            drg_version=version,
            cc_exclusions_version=definitions if definitions != version else "",
            or_procedure=or_procedure,
            icd9=icd9,
        )

    def _crosswalk(
        self, direction: str, key: str, *, reverse: bool = False
    ) -> tuple[CrosswalkCode, ...]:
        """ICD-9 codes a GEM links to `key` (caller holds the lock)."""
        if reverse:
            rows = self._conn.execute(
                "SELECT source, flags FROM gem_entries WHERE direction = ? AND target = ?",
                (direction, key),
            ).fetchall()
        else:
            rows = self._conn.execute(
                "SELECT target, flags FROM gem_entries WHERE direction = ? AND source = ?",
                (direction, key),
            ).fetchall()
        kind = "sg" if direction == "9to10pcs" else "dx"
        out: list[CrosswalkCode] = []
        for icd9_key, flags in rows:
            if not icd9_key:
                continue
            title_row = self._conn.execute(
                "SELECT code, title FROM icd9_codes WHERE kind = ? AND key = ?", (kind, icd9_key)
            ).fetchone()
            code, title = title_row or (icd9_display(icd9_key, kind), "")
            out.append(_crosswalk_code(code, title, flags))
        return tuple(out)


def _crosswalk_code(code: str, title: str, flags: str) -> CrosswalkCode:
    return CrosswalkCode(
        code=code,
        title=title,
        approximate=flags[:1] == "1",
        no_map=flags[1:2] == "1",
        combination=flags[2:3] == "1",
        scenario=int(flags[3:4] or 0),
        choice_list=int(flags[4:5] or 0),
    )


def _cm_display(key: str) -> str:
    return key if len(key) <= 3 else f"{key[:3]}.{key[3:]}"


def _version_key(version: str) -> tuple[int, int]:
    major, _, minor = version.lstrip("v").partition(".")
    return int(major), int(minor or 0)


# ---------------------------------------------------------------------- DRG and ICD-9 answers


class KnowledgeQueries:
    """Look-ups behind `/code drg`, `/code crosswalk` and ICD-9 codes (read-only, thread-safe).

    Kept apart from the card facts: these answer whole questions, not one card's block.
    """

    def __init__(self, base: KnowledgeBase) -> None:
        """Share the connection and lock of a `KnowledgeBase`."""
        self._base = base
        self._groups: dict[str, list[tuple[object, ...]]] = {}

    @property
    def available(self) -> bool:
        """False for a database built before the knowledge tables existed."""
        return self._base.available

    def _rows(self, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
        with self._base._lock:
            return self._base._conn.execute(sql, params).fetchall()

    def drg(self, number: str, day: date) -> DrgAnswer | None:
        """One MS-DRG as of `day`: title, MDC, type, weight, GMLOS, AMLOS and its family."""
        version = self._base.drg_version_on(day)
        if not version:
            return None
        definitions = self._base.definitions_version(version) or version
        number = number.zfill(3)
        rows = self._groups.get(definitions)
        if rows is None:  # ~770 rows per version, read once
            rows = self._rows(
                "SELECT drg, title, mdc, type FROM drg_groups WHERE version = ? ORDER BY drg",
                (definitions,),
            )
            self._groups[definitions] = rows
        by_number = {str(r[0]): r for r in rows}
        row = by_number.get(number)
        if row is None:
            return None
        stem = drg_stem(str(row[1]))
        family = [
            (str(r[0]), str(r[1]))
            for r in rows
            if drg_stem(str(r[1])) == stem and abs(int(str(r[0])) - int(number)) <= 3
        ]
        fiscal_year = int(version.lstrip("v").partition(".")[0]) - 43 + 2026
        weights = self._rows(
            "SELECT fiscal_year, weight, gmlos, amlos, post_acute, special_pay FROM drg_weights"
            " WHERE drg = ? AND fiscal_year <= ? ORDER BY fiscal_year DESC LIMIT 1",
            (number, fiscal_year),
        )
        mdc_title = ""
        if row[2]:
            found = self._rows("SELECT title FROM drg_mdc WHERE mdc = ?", (row[2],))
            mdc_title = str(found[0][0]) if found else ""
        weight = weights[0] if weights else None
        return DrgAnswer(
            drg=number,
            title=str(row[1]),
            mdc=str(row[2]),
            mdc_title=mdc_title,
            type=str(row[3]),
            version=version,
            definitions_version=definitions,
            weight=float(weight[1]) if weight else None,  # type: ignore[arg-type]
            gmlos=float(weight[2]) if weight and weight[2] is not None else None,  # type: ignore[arg-type]
            amlos=float(weight[3]) if weight and weight[3] is not None else None,  # type: ignore[arg-type]
            weight_year=int(weight[0]) if weight else 0,  # type: ignore[call-overload]
            post_acute=bool(weight[4]) if weight else False,
            special_pay=bool(weight[5]) if weight else False,
            family=tuple(family),
        )

    def icd9(self, key: str, kind: str) -> tuple[str, str] | None:
        """(display code, title) of an ICD-9-CM code of `kind` ("dx" or "sg")."""
        rows = self._rows(
            "SELECT code, title FROM icd9_codes WHERE kind = ? AND key = ?", (kind, key)
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def icd9_children(self, key: str, kind: str, limit: int = 12) -> list[tuple[str, str]]:
        """ICD-9 codes under a category typed without its digits (250 -> 250.00 …)."""
        rows = self._rows(
            "SELECT code, title FROM icd9_codes WHERE kind = ? AND key > ? AND key < ?"
            " ORDER BY key LIMIT ?",
            (kind, key, key + "~", limit),
        )
        return [(str(code), str(title)) for code, title in rows]

    def forward(self, key: str, kind: str) -> list[tuple[str, str]]:
        """ICD-9 -> ICD-10 GEM rows: (target key, flags); target '' is "no map"."""
        direction = "9to10pcs" if kind == "sg" else "9to10"
        rows = self._rows(
            "SELECT target, flags FROM gem_entries WHERE direction = ? AND source = ?"
            " ORDER BY flags, target",
            (direction, key),
        )
        return [(str(t), str(f)) for t, f in rows]

    def backward(self, key: str) -> list[tuple[str, str, str]]:
        """ICD-10-CM -> ICD-9-CM GEM rows: (ICD-9 display code, title, flags)."""
        rows = self._rows(
            "SELECT g.target, g.flags, c.code, c.title FROM gem_entries g"
            " LEFT JOIN icd9_codes c ON c.kind = 'dx' AND c.key = g.target"
            " WHERE g.direction = '10to9' AND g.source = ? ORDER BY g.flags, g.target",
            (key,),
        )
        return [
            (
                str(code or icd9_display(str(target), "dx")) if target else "",
                str(title or ""),
                str(flags),
            )
            for target, flags, code, title in rows
        ]


@dataclass(frozen=True, slots=True)
class DrgAnswer:
    """One MS-DRG: `definitions_version` is where title/MDC come from (v43.1 for v44)."""

    drg: str
    title: str
    mdc: str
    mdc_title: str
    type: str
    version: str
    definitions_version: str
    weight: float | None
    gmlos: float | None
    amlos: float | None
    weight_year: int
    post_acute: bool
    special_pay: bool
    family: tuple[tuple[str, str], ...]


_SEVERITY_SUFFIX = (
    " without cc/mcc",
    " with cc/mcc",
    " without mcc",
    " with mcc",
    " with cc",
    " without cc",
)


def drg_stem(title: str) -> str:
    """A DRG title without its severity split: "Heart Failure and Shock with MCC" -> stem."""
    lowered = title.lower()
    for suffix in _SEVERITY_SUFFIX:
        if lowered.endswith(suffix):
            return lowered[: -len(suffix)]
    return lowered
