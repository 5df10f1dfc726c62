"""Free text from the command line that goes into the logs: UTF-8 or refused at once.

Python hands over the bytes of an argument that is not UTF-8 as lone surrogates, which
no log line can hold. Such an argument is a usage error (exit 2) naming its option,
before anything is written; otherwise the run would crash on its first event and leave
an empty experiment behind. Every option whose text reaches a log uses ``LOG_TEXT``.
"""

from __future__ import annotations

from typing import Any

import click

__all__ = ["LOG_TEXT", "LogText"]


class LogText(click.types.StringParamType):
    """A ``str`` option or argument that must be valid UTF-8."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = super().convert(value, param, ctx)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = ord(text[exc.start])
            byte = f" (byte 0x{bad - 0xDC00:02x})" if 0xDC80 <= bad <= 0xDCFF else ""
            self.fail(
                f"not valid UTF-8{byte} at character {exc.start + 1}; "
                "logs hold UTF-8 text only (check the terminal's or the script's encoding)",
                param,
                ctx,
            )
        return text


LOG_TEXT = LogText()
