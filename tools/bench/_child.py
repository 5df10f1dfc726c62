"""Entry point of a measuring child: ``python -m bench._child MODULE FUNC`` < JSON arguments.

Calls ``bench.MODULE.FUNC(**arguments)`` and prints its JSON result on one line that starts
with ``_harness.MARKER``, adding the process's peak resident set size. Each measurement
runs in a fresh process so that one contender's imports, caches and heap never help or
hurt another's, and so that peak memory belongs to one contender alone.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys

from bench._harness import MARKER


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m bench._child MODULE FUNC < ARGS.json", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{argv[1]}")
    function = getattr(module, argv[2])
    arguments = json.loads(sys.stdin.read() or "{}")
    result = dict(function(**arguments))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result["maxrss_kib"] = peak // 1024 if sys.platform == "darwin" else peak
    sys.stdout.flush()
    sys.stdout.write(MARKER + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
