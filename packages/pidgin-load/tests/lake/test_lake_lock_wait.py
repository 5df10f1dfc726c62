"""A load waiting for the lake's publish lock says so, through the same callback as a file."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pidgin_load as pl


def test_waiting_for_the_publish_lock_is_announced_once(
    lake: Any, write_experiment: Any, tmp_path: Path
) -> None:
    held = write_experiment(tmp_path / "holder", conversations=1, turns=1)
    mine = write_experiment(tmp_path / "mine", conversations=1, turns=2)
    # the holder pauses inside its lake transaction, holding the publish lock, until killed
    holder = lake.loader(held.parent.parent, env=lake.env(**{pl.LAKE_PAUSE_ENV: "600"}))
    told: list[str] = []
    outcome: list[pl.LoadSummary] = []

    def load_mine() -> None:
        outcome.append(
            pl.load_experiment(
                mine, target=lake.target, data_path=str(lake.data_path), on_lock_wait=told.append
            )
        )

    loading = threading.Thread(target=load_mine)
    try:
        lake.wait_for(holder, "before the lake commit")
        loading.start()
        deadline = time.monotonic() + 300
        while not told and loading.is_alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not outcome, "the load went on while another loader held the publish lock"
    finally:
        holder.kill()  # PostgreSQL ends its transaction and releases the lock
        holder.communicate(timeout=60)
    loading.join(300)
    assert not loading.is_alive()
    (summary,) = outcome
    assert summary.ok, summary.failed
    (message,) = told  # once, however many times the lock was tried
    assert message.startswith(f"lake {lake.target}: another loader holds its publish lock")
    assert message.endswith(" s for it")
    # the wait ended when the holder died: its experiment never landed, mine did
    assert lake.query("SELECT experiment_id FROM experiments") == [(mine.name,)]


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
