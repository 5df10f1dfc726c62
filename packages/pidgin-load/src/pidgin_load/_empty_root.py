"""What to say when ``--all ROOT`` finds no run: most often the path is one level off.

A CI job that loads nothing because of a wrong path must not pass quietly, so both
``pidgin-load --all`` and ``pidgin load-db --all`` fail on an empty root unless told that
it is expected, and say where the runs probably are.
"""

from __future__ import annotations

import os
from pathlib import Path

from pidgin_events import CHATS_DIR, EXPERIMENTS_DIR

from ._run_files import discover_runs

__all__ = ["empty_root_message"]


def empty_root_message(root: str | os.PathLike[str]) -> str:
    """Why ``root`` holds no run for ``load_all``, and where the runs probably are.

    The message names paths, not commands: ``pidgin-load`` and ``pidgin load-db`` take
    the root in different ways.
    """
    path = Path(root).absolute()
    layout = f"an output root holds runs in {EXPERIMENTS_DIR}/<id>/ and {CHATS_DIR}/<id>/"
    found = f"no runs found under {path} ({layout})"
    if discover_runs(path.parent):
        return f"{found}; the output root is probably {path.parent}"
    if path in discover_runs(path.parent.parent):
        return f"{found}; {path} is a run itself, not an output root"
    try:
        children = sorted(child for child in path.iterdir() if child.is_dir())
    except OSError:
        children = []
    deeper = [child for child in children if discover_runs(child)]
    if deeper:
        return f"{found}; the output root is probably {deeper[0]}"
    return found
