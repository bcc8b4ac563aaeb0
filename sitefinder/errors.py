"""Errors that reach the user.

Every error raised for bad input is a :class:`InputError`: it names the file, the
row or field where it can, and what to do about it, so the CLI can print one
clear paragraph instead of a traceback from deep inside a library.
"""

from __future__ import annotations

from pathlib import Path


class SitefinderError(Exception):
    """Base class for all errors sitefinder raises on purpose."""


class InputError(SitefinderError):
    """Bad input: a file, a row, a field or a setting the user must fix.

    Parameters
    ----------
    problem : str
        What is wrong, in one sentence.
    path : str or Path, optional
        The file the problem is in.
    where : str, optional
        Row, field or setting, e.g. ``"row 12, column 'geometry'"``.
    hint : str, optional
        What the user should do about it.
    """

    def __init__(
        self,
        problem: str,
        *,
        path: str | Path | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = Path(path) if path is not None else None
        self.where = where
        self.hint = hint
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The whole error as one paragraph."""
        parts = []
        if self.path is not None:
            parts.append(f"{self.path}:")
        if self.where:
            parts.append(f"{self.where}:")
        parts.append(self.problem.rstrip(".") + ".")
        if self.hint:
            parts.append(self.hint.rstrip(".") + ".")
        return " ".join(parts)


class ScenarioError(InputError):
    """The scenario file is invalid; ``problems`` lists every error found at once."""

    def __init__(self, problems: list[str], *, path: str | Path | None = None) -> None:
        self.problems = problems
        listing = "; ".join(problems)
        super().__init__(
            f"the scenario has {len(problems)} error(s): {listing}",
            path=path,
            hint="Fix the fields named above (see sitefinder/scenarios/default.yaml for a "
            "complete, valid example) and run again",
        )


class InfeasibleError(SitefinderError):
    """A selection request that no set of sites can satisfy."""


class SelectionTimeoutError(SitefinderError):
    """The selection solver ran out of time before it found a set that keeps every rule.

    Not a proof that no set exists: raising ``time_limit_s`` (scenario ``clustering:``)
    or asking for less may find one.
    """
