"""A load waiting for the lake's publish lock says so, through the same callback as a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pidgin_load as pl


def test_waiting_for_the_publish_lock_is_announced_once(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    held = write_experiment(tmp_path / "holder", conversations=1, turns=1)
    mine = write_experiment(tmp_path / "mine", conversations=1, turns=2)
    holder = lake.loader(held.parent.parent, env=lake.env(**{pl.LAKE_PAUSE_ENV: "4"}))
    try:
        lake.wait_for(holder, "before the lake commit")  # it holds the publish lock now
        told: list[str] = []
        summary = pl.load_experiment(
            mine, target=lake.target, data_path=str(lake.data_path), on_lock_wait=told.append
        )
    finally:
        _out, err = holder.communicate(timeout=300)
    assert holder.returncode == 0, err
    assert summary.ok, summary.failed
    (message,) = told  # once, however many times the lock was tried
    assert message.startswith(f"lake {lake.target}: another loader holds its publish lock")
    assert message.endswith(" s for it")
    # both loads landed: the wait ended when the holder committed
    assert sorted(row[0] for row in lake.query("SELECT experiment_id FROM experiments")) == sorted(
        [held.name, mine.name]
    )


def test_a_free_lake_is_not_waited_for(lake: Any, write_experiment: Any, tmp_path: Path) -> None:
    run = write_experiment(tmp_path / "out")
    told: list[str] = []
    summary = pl.load_all(
        run.parent.parent,
        target=lake.target,
        data_path=str(lake.data_path),
        on_lock_wait=told.append,
    )
    assert summary.ok
    assert told == []
