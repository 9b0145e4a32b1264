"""Printing for the commands: a line the console's encoding cannot show is escaped, not a crash."""
from __future__ import annotations

import sys


def say(text: str) -> None:
    """Print to stdout even when its encoding cannot show a file's name (it is escaped instead)."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    print(text.encode(encoding, "backslashreplace").decode(encoding, "replace"))
