"""``compression_ratio``: deflate size over UTF-8 size, the one metric DuckDB cannot compute.

DuckDB has no deflate function, and a Python UDF needs NumPy or PyArrow, which pidgin-load
does not depend on. So this is the one Python loop over replies. It runs on the thread
that measures the batch, over the replies that thread was handed anyway, and ``zlib``
lets go of the interpreter while it compresses, so batches compress side by side;
``docs/metrics.md`` has the definition and the cost.
"""

from __future__ import annotations

import zlib

__all__ = ["compression_ratio", "compression_ratios"]

_CAP = 2.0
"""pidgin-ai caps the ratio: zlib's 11 bytes of framing make short replies exceed 1."""


def compression_ratio(text: str) -> float:
    """zlib-compressed size (default level) over UTF-8 size, at most 2; 0 for an empty reply."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return min(len(zlib.compress(data)) / len(data), _CAP)


def compression_ratios(texts: list[str]) -> list[float]:
    """``compression_ratio`` of each reply, in order."""
    return [compression_ratio(text) for text in texts]
