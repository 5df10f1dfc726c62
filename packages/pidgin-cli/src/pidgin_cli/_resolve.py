"""Turning what a person types (an id, a name, a prefix) into one run directory.

Resolution reads only directory listings, the first line of each ``experiment.jsonl`` and
pidgin-ai's small ``manifest.json``: naming a run must not cost building its state. The
text is validated as an id before it touches a path, so ``../x`` can never escape the root.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pidgin_events import EXPERIMENT_LOG, MANIFEST, RUN_DIRS, RUN_KINDS, RunKind

from ._output import fail

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = [
    "RunRef",
    "complete_run_id",
    "first_record",
    "read_json",
    "resolve_run",
    "scan_runs",
]

ALL_KINDS: tuple[RunKind, ...] = RUN_KINDS
_FIRST_LINE_LIMIT = 1 << 20  # an ExperimentStartEvent with a huge config is still one line
_MAX_LISTED = 10


@dataclass(frozen=True, slots=True)
class RunRef:
    """A run directory and the words that may name it."""

    directory: Path
    kind: RunKind
    name: str | None
    aliases: tuple[str, ...] = ()
    """Other ids that mean this run: pidgin-ai's manifest id, a chat's conversation ids."""

    @property
    def id(self) -> str:
        return self.directory.name

    @property
    def keys(self) -> tuple[str, ...]:
        """Everything a prefix may match, the id first."""
        keys = [self.id]
        if self.name and self.name != self.id:
            keys.append(self.name)
        keys.extend(alias for alias in self.aliases if alias not in keys)
        return tuple(keys)

    def describe(self) -> str:
        extra = f"name {self.name}, " if self.name and self.name != self.id else ""
        return f"{self.id}  ({extra}{self.kind})"


def resolve_run(root: Path, text: str, *, kinds: Sequence[RunKind] = ALL_KINDS) -> Path:
    """The directory of the one run that ``text`` names under the output ``root``.

    ``text`` may be the full id, the experiment name, or a unique prefix of either. An
    invalid id is a usage error (exit status 2); an unknown or ambiguous one a failure
    (exit status 1) whose message lists the candidates.
    """
    what = _what(kinds)
    _validate(text, what)
    for kind in kinds:  # the common case, a full id, costs one stat
        direct = root / RUN_DIRS[kind] / text
        if direct.is_dir():
            return direct
    refs = scan_runs(root, kinds)
    exact = [ref for ref in refs if text in ref.keys]
    if len(exact) == 1:
        return exact[0].directory
    if len(exact) > 1:
        raise _ambiguous(text, exact, what)
    matches = [ref for ref in refs if any(key.startswith(text) for key in ref.keys)]
    if len(matches) == 1:
        return matches[0].directory
    if len(matches) > 1:
        raise _ambiguous(text, matches, what)
    raise _unknown(root, text, refs, what, kinds)


def scan_runs(root: Path, kinds: Sequence[RunKind] = ALL_KINDS) -> list[RunRef]:
    """Every run directory under ``root`` with the names it answers to, sorted by id."""
    refs: list[RunRef] = []
    for kind in kinds:
        for directory in _subdirectories(root / RUN_DIRS[kind]):
            if kind == "experiment":
                name, aliases = _experiment_names(directory)
                refs.append(RunRef(directory, kind, name, aliases))
            else:
                refs.append(RunRef(directory, kind, None, tuple(_conversation_ids(directory))))
    refs.sort(key=lambda ref: ref.id)
    return refs


def complete_run_id(
    ctx: click.Context, _param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """Shell completion of ID arguments: ids and names under the output root, cheaply."""
    from click.shell_completion import CompletionItem

    from ._output import resolve_output_root

    try:
        output = ctx.params.get("output")
        root = resolve_output_root(ctx, output if isinstance(output, Path) else None)
        items = []
        for ref in scan_runs(root, ALL_KINDS):
            for key in ref.keys[:2]:  # id and name; aliases would only clutter the menu
                if key.startswith(incomplete):
                    items.append(CompletionItem(key, help=ref.describe()))
        return items
    except OSError:  # completion must never print a traceback into the shell
        return []


def _what(kinds: Sequence[RunKind]) -> str:
    return " or ".join(kinds) if kinds else "run"


def _validate(text: str, what: str) -> None:
    from pidgin_events import validate_id

    try:
        validate_id(text, f"{what} id")
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="'ID'") from None


def _ambiguous(text: str, refs: Sequence[RunRef], what: str) -> click.ClickException:
    listed = "\n".join(f"  {ref.describe()}" for ref in refs[:_MAX_LISTED])
    more = f"\n  ... and {len(refs) - _MAX_LISTED} more" if len(refs) > _MAX_LISTED else ""
    return fail(
        f"{text!r} is ambiguous: it matches {len(refs)} runs:\n{listed}{more}\n"
        f"Give the full id or a longer prefix."
    )


def _unknown(
    root: Path, text: str, refs: Sequence[RunRef], what: str, kinds: Sequence[RunKind]
) -> click.ClickException:
    places = " or ".join(str(root / RUN_DIRS[kind]) for kind in kinds)
    if not refs:
        return fail(
            f"no {what} {text!r}: there are none under {places} "
            "(choose another output root with -o or $PIDGIN_OUTPUT)"
        )
    by_key = {key: ref for ref in reversed(refs) for key in ref.keys}
    close = difflib.get_close_matches(text, list(by_key), n=_MAX_LISTED, cutoff=0.5)
    if not close:  # prefixes typed with a typo rarely score well; compare with same length
        shortened = {key[: len(text)]: key for key in by_key}
        close = [
            shortened[key]
            for key in difflib.get_close_matches(text, list(shortened), n=_MAX_LISTED)
        ]
    seen: list[RunRef] = []
    for key in close:
        if by_key[key] not in seen:
            seen.append(by_key[key])
    if seen:
        listed = "\n".join(f"  {ref.describe()}" for ref in seen)
        hint = f"Did you mean one of these?\n{listed}"
    else:
        hint = "Run 'pidgin experiment list --all' to see them."
    return fail(f"no {what} matches {text!r} under {places}.\n{hint}")


def _subdirectories(parent: Path) -> Iterator[Path]:
    try:
        entries = list(parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                yield entry
        except OSError:
            continue


def _experiment_names(directory: Path) -> tuple[str | None, tuple[str, ...]]:
    """The name from the first line of ``experiment.jsonl``, else from pidgin-ai's manifest."""
    start = first_record(directory / EXPERIMENT_LOG)
    if start is not None and start.get("event_type") == "ExperimentStartEvent":
        name = start.get("name")
        return (name if isinstance(name, str) else None), ()
    manifest = read_json(directory / MANIFEST)
    if manifest is None:
        return None, ()
    name = manifest.get("name")
    legacy_id = manifest.get("experiment_id")
    aliases = (legacy_id,) if isinstance(legacy_id, str) and _is_valid(legacy_id) else ()
    return (name if isinstance(name, str) else None), aliases


def _conversation_ids(directory: Path) -> Iterable[str]:
    from pidgin_events import conversation_id_of_log

    try:
        names = sorted(entry.name for entry in directory.iterdir())
    except OSError:
        return []
    found = (conversation_id_of_log(name) for name in names)
    return [conversation_id for conversation_id in found if conversation_id]


def first_record(path: Path) -> dict[str, object] | None:
    try:
        with path.open("rb") as stream:
            line = stream.readline(_FIRST_LINE_LIMIT)
    except OSError:
        return None
    return _loads(line)


def read_json(path: Path) -> dict[str, object] | None:
    """The JSON object in ``path``; None when it is unreadable or not one object."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return _loads(data)


def _loads(data: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_valid(text: str) -> bool:
    from pidgin_events import validate_id

    try:
        validate_id(text)
    except ValueError:
        return False
    return True
