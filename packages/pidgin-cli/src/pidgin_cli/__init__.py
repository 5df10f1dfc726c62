"""The ``pidgin`` command: run AI-agent conversations, watch them live, load them into DuckDB.

Importing this package is deliberately cheap: ``python -m pidgin_cli --help`` imports it
first, so nothing heavy (click commands, rich, DuckDB, pidgin-state) is imported here. The
names below are resolved on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["attach_experiment", "main", "resolve_run"]

_LAZY = {
    "main": "pidgin_cli._main",
    "resolve_run": "pidgin_cli._resolve",
    "attach_experiment": "pidgin_cli._commands_watch",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("pidgin-cli")
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
