"""``python tools/fake_providers [--latency SECONDS] [--port N]``: serve until killed."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_providers import Behaviour, FakeServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--words", type=int, default=12, help="words per reply")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between chunks")
    args = parser.parse_args()
    server = FakeServer(
        Behaviour(latency=args.latency, words=args.words, chunk_delay=args.chunk_delay)
    )
    server.record_requests = False
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(args.port)


if __name__ == "__main__":
    main()
