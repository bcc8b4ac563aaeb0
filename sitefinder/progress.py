"""Progress bars for long steps: visible on the CLI, quiet in tests and notebooks by choice."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")

_enabled: bool | None = None


def set_progress(enabled: bool | None) -> None:
    """Force progress bars on (True), off (False) or back to automatic (None).

    Automatic means: shown when standard error is a terminal and the environment
    variable ``SITEFINDER_QUIET`` is not set.
    """
    global _enabled
    _enabled = enabled


def progress_enabled() -> bool:
    """Whether progress bars are shown right now."""
    if _enabled is not None:
        return _enabled
    if os.environ.get("SITEFINDER_QUIET"):
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """Wrap ``iterable`` in a progress bar labelled ``desc`` when bars are enabled."""
    if not progress_enabled():
        yield from iterable
        return
    yield from tqdm(iterable, desc=desc, total=total, leave=False, file=sys.stderr)


def step_bar(total: int, desc: str) -> tqdm:
    """A manual progress bar over ``total`` pipeline steps (disabled when quiet)."""
    return tqdm(total=total, desc=desc, disable=not progress_enabled(), file=sys.stderr)
