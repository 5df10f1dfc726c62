"""Experiments as files: ``pidgin run SPEC.yaml``, its JSON Schema, grids and ``--like``.

The keys of a spec are the options of ``pidgin run`` (``_keys``); nothing here lists
them a second time.
"""

from ._apply import (
    command_line_keys,
    conversation_keys,
    current_cell,
    grid_cells,
    like_option,
    like_source,
    run_cell,
    spec_argument,
    spec_in_use,
    spec_option_values,
    unknown_models,
)
from ._keys import GRID_MODES, PIDGIN_AI_ALIASES, SpecKey, spec_keys
from ._load import Spec, SpecCheck, SpecError, load_spec
from ._record import run_record
from ._run import run_extras, run_grid
from ._schema import spec_schema, spec_schema_text

__all__ = [
    "GRID_MODES",
    "PIDGIN_AI_ALIASES",
    "Spec",
    "SpecCheck",
    "SpecError",
    "SpecKey",
    "command_line_keys",
    "conversation_keys",
    "current_cell",
    "grid_cells",
    "like_option",
    "like_source",
    "load_spec",
    "run_cell",
    "run_extras",
    "run_grid",
    "run_record",
    "spec_argument",
    "spec_in_use",
    "spec_keys",
    "spec_option_values",
    "spec_schema",
    "spec_schema_text",
    "unknown_models",
]
