"""The published JSON Schema (draft 2020-12) of spec files, built from the same keys.

``docs/spec.schema.json`` is this function's output; a test keeps the two equal, so the
published schema changes exactly when an option of ``pidgin run`` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ._keys import GRID_KEY, GRID_MODE_KEY, GRID_MODES, SpecKey, aliases_of

__all__ = ["spec_schema", "spec_schema_text"]


def spec_schema(keys: Mapping[str, SpecKey], per_conversation: Sequence[str]) -> dict[str, Any]:
    """The JSON Schema of a spec whose keys are ``keys`` (pidgin-ai aliases included)."""
    properties: dict[str, Any] = {name: key.schema() for name, key in sorted(keys.items())}
    for alias, name in sorted(aliases_of(keys).items()):
        properties[alias] = {"$ref": f"#/properties/{name}", "description": f"pidgin-ai: {name}"}
    properties[GRID_KEY] = {
        "type": "object",
        "description": "Key -> list of values; every combination (the cartesian product) is "
        "one cell, run as its own experiment or as its own conversations (grid_mode).",
        "minProperties": 1,
        "properties": {
            name: {"type": "array", "minItems": 1, "items": {"$ref": f"#/properties/{name}"}}
            for name in [*sorted(keys), *sorted(aliases_of(keys))]
        },
        "additionalProperties": False,
    }
    properties[GRID_MODE_KEY] = {
        "enum": list(GRID_MODES),
        "default": GRID_MODES[0],
        "description": "experiments: each grid cell is its own experiment; conversations: "
        "one experiment whose conversations are the cells times repetitions (the grid may "
        f"then vary only {', '.join(per_conversation)}).",
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pidgin experiment spec",
        "description": "An experiment for 'pidgin run SPEC.yaml'. Keys are the long options "
        "of 'pidgin run' with '_' for '-'; options given on the command line override them.",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }


def spec_schema_text(keys: Mapping[str, SpecKey], per_conversation: Sequence[str]) -> str:
    """The schema as published: indented JSON with a final newline."""
    return json.dumps(spec_schema(keys, per_conversation), indent=2, ensure_ascii=False) + "\n"
