"""Option types whose errors list the allowed values (``--population-vintage abc`` says
``2016, 2023``, not just "invalid int value")."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence


def one_of_ints(allowed: Sequence[int]) -> Callable[[str], int]:
    """An argparse ``type`` accepting only the whole numbers of `allowed`; its error lists them.

    Used with ``choices`` left out, so that a non-number and a number outside the list give
    the same message.
    """
    shown = ", ".join(str(a) for a in allowed)

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
        if value not in allowed:
            given = text if text.strip().isdigit() else repr(text)
            raise argparse.ArgumentTypeError(f"invalid choice: {given} (choose from {shown})")
        return value

    parse.__name__ = "value"  # argparse names the type in some messages
    return parse
