"""What parallel work may use: the CPUs this process may run on, and compiled loops.

One place for both, so the layout workers, the joining threads and the counting threads
agree on how many CPUs there are (a container or ``taskset`` may allow fewer than the
machine has), and every compiled loop is cached and releases the GIL the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one).

    Examples
    --------
    >>> usable_cpus() >= 1
    True
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def compiled(function: Callable) -> Callable:
    """``function`` compiled by numba, releasing the GIL, kept in numba's disk cache.

    The cache (beside the module, or in the user's cache folder when that is read-only)
    saves compiling in every new process. Where no folder for it is writable, numba
    refuses to cache when the function is decorated, and each process compiles instead.
    Compiled functions may call each other: decorate them at import, not on first use.
    """
    from numba import njit

    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return njit(nogil=True)(function)
