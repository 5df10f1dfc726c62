"""Pidgin's benchmark suite: Pidgin against pidgin-ai 1.1 and against the machine's limits.

Run it with ``python3 tools/dev.py bench`` (or ``python tools/bench/run.py``); see ``run.py``.
Every module here imports only the standard library at import time, because the same
modules also run inside pidgin-ai's own virtual environment, where Pidgin is not installed.
"""
