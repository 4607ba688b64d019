"""Several processes charging one team pool on one SQLite file never overspend.

The full size (4 x 2,500, quota 5,000) runs in `make bench`; this is the `make test` size.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.quota_bench import stress


def test_four_processes_share_one_team_quota_exactly(tmp_path: Path) -> None:
    result = stress(processes=4, per_process=150, quota=300, path=tmp_path / "state.sqlite")
    assert result["allowed"] == 300
    assert result["refused"] == 300
    assert result["replays_not_charged"] == 4 * 15
    assert result["ledger_rows"] == 600
    assert result["ledger_allowed_cost"] == 300
    assert result["team_counter"] == 300
    assert result["exact"]
