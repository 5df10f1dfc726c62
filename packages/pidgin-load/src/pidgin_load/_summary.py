"""What a load did, for people (``str``) and for machines (``to_json``)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pidgin_events import plural

__all__ = ["LoadSummary", "RunOutcome"]


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """One run directory and what happened to it, with the reason in words."""

    run_dir: str
    experiment_id: str | None
    db_path: str | None
    reason: str

    def __str__(self) -> str:
        return f"{self.experiment_id or self.run_dir}: {self.reason}"


@dataclass(slots=True)
class LoadSummary:
    """The outcome of ``load_experiment`` or ``load_all``.

    ``loaded`` lists every run written to a database by this call: first loads, forced
    reloads and reloads of stale runs. ``stale`` is the part of ``loaded`` that had been
    loaded before and changed since (its reason says what changed). ``skipped`` runs were
    left alone (unchanged since their last load, or still running when ``load_all`` met
    them). ``failed`` runs were not loaded, and the reason says why. ``rows`` counts rows
    written per table; ``bad_lines`` counts lines recorded in ``load_errors`` and
    ``unknown_events`` events of types this version does not know (they are in ``events``).
    """

    loaded: list[RunOutcome] = field(default_factory=list)
    skipped: list[RunOutcome] = field(default_factory=list)
    stale: list[RunOutcome] = field(default_factory=list)
    failed: list[RunOutcome] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    unknown_events: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing failed: every run is loaded or was already loaded."""
        return not self.failed

    @property
    def found_nothing(self) -> bool:
        """True when no run was met at all: for ``load_all``, most often a wrong path."""
        return not (self.loaded or self.skipped or self.failed)

    def add_rows(self, rows: dict[str, int]) -> None:
        for table, count in rows.items():
            self.rows[table] = self.rows.get(table, 0) + count

    def merge(self, other: LoadSummary) -> None:
        """Fold another summary into this one (``seconds`` is left to the caller)."""
        self.loaded.extend(other.loaded)
        self.skipped.extend(other.skipped)
        self.stale.extend(other.stale)
        self.failed.extend(other.failed)
        self.add_rows(other.rows)
        self.bad_lines += other.bad_lines
        self.unknown_events += other.unknown_events
        self.warnings.extend(other.warnings)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["seconds"] = round(self.seconds, 6)
        return data

    def to_json(self) -> str:
        """A stable, machine-readable summary (what ``pidgin-load --json`` prints)."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def __str__(self) -> str:
        parts = [f"{len(self.loaded)} loaded"]
        if self.stale:
            parts.append(f"{len(self.stale)} of them stale")
        parts += [f"{len(self.skipped)} skipped", f"{len(self.failed)} failed"]
        text = ", ".join(parts) + f" in {self.seconds:.2f} s"
        if self.bad_lines:
            text += f"; {plural(self.bad_lines, 'bad line')} recorded in load_errors"
        if self.unknown_events:
            text += f"; {plural(self.unknown_events, 'event')} of unknown type"
        return text
