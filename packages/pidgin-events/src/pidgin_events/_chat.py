"""Chats: a single conversation outside any experiment, with its own directory and lock."""

from __future__ import annotations

import os

from ._fileio import make_private_dir
from ._ids import new_id, validate_id
from ._layout import CHATS_DIR, output_root
from ._liveness import RunLock
from ._recorder import Conversation
from ._time import utc_now
from ._writer import FsyncPolicy

TYPE_CHECKING = False  # typing costs agent code milliseconds at import
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["Chat"]


class Chat:
    """A single conversation outside any experiment, under ``<root>/chats/<stamp>_<id>/``."""

    @staticmethod
    def create(
        root: str | os.PathLike[str] | None = None,
        *,
        agent_a: str | Mapping[str, Any],
        agent_b: str | Mapping[str, Any],
        max_turns: int | None = None,
        initial_prompt: str | None = None,
        config: Mapping[str, Any] | None = None,
        conversation_id: str | None = None,
        fsync: FsyncPolicy = "close",
    ) -> Conversation:
        conversation_id = validate_id(
            new_id("conv") if conversation_id is None else conversation_id, "conversation id"
        )
        stamp = utc_now().strftime("%Y%m%d_%H%M%S")
        short = conversation_id.removeprefix("conv_")
        directory = output_root(root) / CHATS_DIR / f"{stamp}_{short}"
        make_private_dir(directory.parent)
        os.mkdir(directory, 0o700)
        lock = RunLock(directory)
        try:
            return Conversation(
                directory,
                conversation_id=conversation_id,
                agent_a=agent_a,
                agent_b=agent_b,
                max_turns=max_turns,
                initial_prompt=initial_prompt,
                config=config,
                fsync=fsync,
                lock=lock,
            )
        except BaseException:
            lock.release()
            raise
