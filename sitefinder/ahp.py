"""AHP: criterion weights from pairwise comparisons (Saaty's Analytic Hierarchy Process).

Norwegian planning practice often sets criterion weights in a workshop by comparing the
criteria two at a time ("transit is 3 times as important as nature"). This module turns
those judgements into weights and says how consistent they are:

* :func:`pairwise_matrix` builds the reciprocal comparison matrix from a list of
  judgements;
* :func:`ahp_weights` returns the weights (normalised principal eigenvector), the
  principal eigenvalue ``lambda_max``, the consistency index ``CI = (lambda_max - n) /
  (n - 1)`` and the consistency ratio ``CR = CI / RI(n)``, and refuses judgements with
  ``CR > 0.1`` (Saaty's rule) unless forced, naming the judgement that disagrees most
  with the others.

The random index ``RI(n)`` is the table from Saaty (1980), *The Analytic Hierarchy
Process*, the one most textbooks and AHP tools reproduce (n = 1..15). Later
publications give slightly different tables (e.g. 0.52 instead of 0.58 for n = 3);
the 1980 table is kept because it reproduces the published consistency ratios of the
classic examples, e.g. CR = 0.169 for the house-buying example in Saaty (1990).

The module is pure: numpy and pandas in, a result object out, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import pandas as pd

from sitefinder.errors import InputError

__all__ = [
    "CR_LIMIT",
    "RANDOM_INDEX",
    "AhpResult",
    "Judgement",
    "ahp_weights",
    "pairwise_matrix",
]

#: Saaty's random consistency index RI(n) for n = 1..15 (Saaty 1980, Table 1.7 as
#: reproduced in most AHP texts). RI(1) = RI(2) = 0: one or two criteria cannot be
#: inconsistent.
RANDOM_INDEX: dict[int, float] = {
    1: 0.0,
    2: 0.0,
    3: 0.58,
    4: 0.90,
    5: 1.12,
    6: 1.24,
    7: 1.32,
    8: 1.41,
    9: 1.45,
    10: 1.49,
    11: 1.51,
    12: 1.48,
    13: 1.56,
    14: 1.57,
    15: 1.59,
}

#: Saaty's acceptance limit for the consistency ratio.
CR_LIMIT = 0.1

# Judgements typed as rounded decimals (0.33 for 1/3, 0.14 for 1/7) are common in
# spreadsheets; accept a product a_ij * a_ji within 3 % of 1 as "reciprocal" and then
# make the matrix exactly reciprocal (see _symmetrise). 1/7 typed as 0.14 is 2 % off.
_RECIPROCAL_RTOL = 0.03
_DIAGONAL_ATOL = 1e-9


class Judgement(NamedTuple):
    """The pairwise judgement the others disagree with most.

    Attributes
    ----------
    row, column : str
        The pair: ``value`` says how many times more important ``row`` is than ``column``.
    given : float
        The judgement in the matrix.
    implied : float
        The ratio of the derived weights, ``w[row] / w[column]``: what the rest of the
        judgements imply this one should be.

    """

    row: str
    column: str
    given: float
    implied: float


@dataclass(frozen=True)
class AhpResult:
    """Weights and consistency of a pairwise comparison matrix.

    Attributes
    ----------
    weights : pandas.Series
        Weight per criterion (index = criterion names), summing to 1.
    lambda_max : float
        Principal eigenvalue of the matrix (equals n for perfectly consistent judgements).
    consistency_index : float
        ``(lambda_max - n) / (n - 1)``; 0 for n <= 2.
    consistency_ratio : float
        ``consistency_index / RANDOM_INDEX[n]``; 0 for n <= 2.
    random_index : float
        ``RANDOM_INDEX[n]``.
    matrix : pandas.DataFrame
        The (exactly reciprocal) matrix the weights were computed from.
    most_inconsistent : Judgement or None
        The judgement farthest (in ratio) from what the weights imply; None for n <= 2.

    """

    weights: pd.Series
    lambda_max: float
    consistency_index: float
    consistency_ratio: float
    random_index: float
    matrix: pd.DataFrame
    most_inconsistent: Judgement | None

    @property
    def n(self) -> int:
        """Number of criteria."""
        return len(self.weights)

    @property
    def consistent(self) -> bool:
        """Whether the consistency ratio is within Saaty's limit of 0.1."""
        return self.consistency_ratio <= CR_LIMIT

    def summary(self) -> str:
        """Describe weights, CR and the weakest judgement in a few lines."""
        lines = [f"{name:<24} {w:6.3f}" for name, w in self.weights.items()]
        lines.append(
            f"lambda_max = {self.lambda_max:.3f}, CI = {self.consistency_index:.3f}, "
            f"CR = {self.consistency_ratio:.3f} "
            f"({'acceptable' if self.consistent else 'too inconsistent'}, limit {CR_LIMIT})"
        )
        if self.most_inconsistent is not None:
            j = self.most_inconsistent
            lines.append(
                f"least consistent judgement: {j.row!r} vs {j.column!r}: given "
                f"{_ratio_text(j.given)}, the other judgements imply about "
                f"{_ratio_text(j.implied)}"
            )
        return "\n".join(lines)


def pairwise_matrix(
    judgements: Mapping[tuple[str, str], float | str] | Iterable[tuple[str, str, float | str]],
    criteria: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Build a reciprocal pairwise comparison matrix from judgements.

    Parameters
    ----------
    judgements : mapping or iterable
        Either ``{(a, b): value, ...}`` or ``[(a, b, value), ...]``, where ``value`` says
        how many times more important ``a`` is than ``b`` (Saaty's 1-9 scale: 1 equal,
        3 moderate, 5 strong, 7 very strong, 9 extreme; 1/3 means ``b`` is moderately
        more important). ``value`` may be a number or a string such as ``"1/3"`` (handy
        in YAML). Give each unordered pair exactly once; the reciprocal is filled in.
    criteria : sequence of str, optional
        Row/column order of the matrix. Default: order of first appearance. When given,
        every judgement must name criteria from this list.

    Returns
    -------
    pandas.DataFrame
        Square matrix, index and columns = criteria, ones on the diagonal,
        ``m.loc[b, a] == 1 / m.loc[a, b]``.

    Raises
    ------
    sitefinder.errors.InputError
        A value is not a positive number, a pair is given twice, a criterion is
        compared with itself with a value other than 1, a criterion is unknown, or
        pairs are missing (all of them are listed).

    Examples
    --------
    >>> m = pairwise_matrix([("transit", "nature", 3), ("transit", "grocery", 1),
    ...                      ("grocery", "nature", "3")])
    >>> float(m.loc["nature", "transit"])
    0.3333333333333333

    """
    items = list(judgements.items()) if isinstance(judgements, Mapping) else list(judgements)
    triples: list[tuple[str, str, float]] = []
    for k, item in enumerate(items):
        if isinstance(judgements, Mapping):
            pair, raw = item
            if not (isinstance(pair, tuple) and len(pair) == 2):
                raise InputError(
                    f"a judgement key must be a pair of criteria, got {pair!r}",
                    where=f"judgement {k + 1}",
                )
            a, b = pair
        else:
            if len(item) != 3:
                raise InputError(
                    f"a judgement must be (criterion, criterion, value), got {item!r}",
                    where=f"judgement {k + 1}",
                )
            a, b, raw = item
        triples.append((str(a), str(b), _judgement_value(raw, where=f"{a!r} vs {b!r}")))

    if criteria is None:
        names: list[str] = []
        for a, b, _ in triples:
            for c in (a, b):
                if c not in names:
                    names.append(c)
    else:
        names = [str(c) for c in criteria]
        if len(set(names)) != len(names):
            raise InputError("the criteria list names a criterion twice", where="criteria")
        unknown = sorted({c for a, b, _ in triples for c in (a, b)} - set(names))
        if unknown:
            raise InputError(
                f"judgements name criteria that are not in the criteria list: {unknown}",
                hint=f"Use one of {names}",
            )
    pos = {c: i for i, c in enumerate(names)}
    n = len(names)
    if n == 0:
        raise InputError("no judgements given", hint="Give at least one pair of criteria")

    mat = np.full((n, n), np.nan)
    np.fill_diagonal(mat, 1.0)
    seen: dict[frozenset[str], tuple[str, str]] = {}
    for a, b, v in triples:
        if a == b:
            if v != 1.0:
                raise InputError(
                    f"a criterion compared with itself must be 1, got {v:g}",
                    where=f"{a!r} vs {a!r}",
                )
            continue
        key = frozenset((a, b))
        if key in seen:
            raise InputError(
                "this pair is judged twice",
                where=f"{a!r} vs {b!r} (first given as {seen[key][0]!r} vs {seen[key][1]!r})",
                hint="Keep one judgement per pair; the reciprocal is filled in automatically",
            )
        seen[key] = (a, b)
        mat[pos[a], pos[b]] = v
        mat[pos[b], pos[a]] = 1.0 / v

    missing = [
        f"{names[i]!r} vs {names[j]!r}"
        for i in range(n)
        for j in range(i + 1, n)
        if math.isnan(mat[i, j])
    ]
    if missing:
        raise InputError(
            f"{len(missing)} pair(s) have no judgement: {', '.join(missing)}",
            hint="AHP needs a judgement for every pair of criteria",
        )
    return pd.DataFrame(mat, index=pd.Index(names), columns=pd.Index(names))


def ahp_weights(
    matrix: pd.DataFrame | np.ndarray | Sequence[Sequence[float]],
    criteria: Sequence[str] | None = None,
    *,
    force: bool = False,
) -> AhpResult:
    """Criterion weights and consistency from a pairwise comparison matrix.

    Parameters
    ----------
    matrix : pandas.DataFrame or array-like, shape (n, n)
        ``matrix[i][j]`` = how many times more important criterion i is than j.
        A DataFrame must have the same labels, in the same order, on index and columns.
        Must be positive, have ones on the diagonal and be reciprocal
        (``m[j][i] == 1 / m[i][j]``, within 3 % so that typed decimals such as 0.33 for
        1/3 are accepted; the matrix is then made exactly reciprocal by the geometric
        mean of ``m[i][j]`` and ``1 / m[j][i]``). 1 <= n <= 15.
    criteria : sequence of str, optional
        Names for an array ``matrix`` (default ``c1 .. cn``). For a DataFrame, if given,
        must equal its labels.
    force : bool, default False
        Return the result even when the consistency ratio exceeds 0.1.

    Returns
    -------
    AhpResult
        Weights (principal right eigenvector, normalised to sum 1), ``lambda_max``,
        consistency index and ratio, and the most inconsistent judgement.

    Raises
    ------
    sitefinder.errors.InputError
        The matrix is not square, has non-positive or non-finite entries, a diagonal
        entry other than 1, a non-reciprocal pair (the cell is named), more than 15
        criteria, or (unless ``force``) a consistency ratio above 0.1, in which case the
        message names the judgement that disagrees most with the others and the value
        they imply.

    Notes
    -----
    The most inconsistent judgement is the pair (i, j) maximising
    ``|log(a_ij * w_j / w_i)|``: the factor by which the judgement differs from the ratio
    of the derived weights (Saaty 2003, "Decision-making with the AHP: why is the
    principal eigenvector necessary", EJOR 145). Changing that judgement towards
    ``w_i / w_j`` lowers the CR the most in practice.

    Examples
    --------
    >>> r = ahp_weights([[1, 3, 5], [1/3, 1, 5/3], [1/5, 3/5, 1]], ["a", "b", "c"])
    >>> r.weights.round(3).tolist(), round(r.consistency_ratio, 6)
    ([0.652, 0.217, 0.13], 0.0)

    """
    names, a = _as_matrix(matrix, criteria)
    n = len(names)
    _validate(a, names)
    a = _symmetrise(a)

    if n == 1:
        weights = np.ones(1)
        lam = 1.0
    else:
        # A positive matrix has a simple, real, largest eigenvalue with a positive
        # eigenvector (Perron-Frobenius); numerical noise can leave tiny imaginary parts.
        eigvals, eigvecs = np.linalg.eig(a)
        k = int(np.argmax(eigvals.real))
        lam = float(eigvals[k].real)
        vec = np.abs(eigvecs[:, k].real)
        weights = vec / vec.sum()

    ri = RANDOM_INDEX[n]
    ci = (lam - n) / (n - 1) if n > 2 else 0.0
    # A consistent matrix gives lambda_max = n up to rounding; do not report -1e-16.
    ci = max(ci, 0.0)
    cr = ci / ri if ri > 0 else 0.0

    worst: Judgement | None = None
    if n > 2:
        err = np.abs(np.log(a * weights[None, :] / weights[:, None]))
        i, j = np.unravel_index(int(np.argmax(np.triu(err, k=1))), err.shape)
        worst = Judgement(
            row=names[i],
            column=names[j],
            given=float(a[i, j]),
            implied=float(weights[i] / weights[j]),
        )

    frame = pd.DataFrame(a, index=pd.Index(names), columns=pd.Index(names))
    result = AhpResult(
        weights=pd.Series(weights, index=pd.Index(names), name="weight"),
        lambda_max=lam,
        consistency_index=ci,
        consistency_ratio=cr,
        random_index=ri,
        matrix=frame,
        most_inconsistent=worst,
    )
    if cr > CR_LIMIT and not force:
        assert worst is not None  # cr > 0 implies n > 2
        raise InputError(
            f"the pairwise judgements are too inconsistent to give reliable weights: "
            f"consistency ratio CR = {cr:.3f} exceeds {CR_LIMIT} "
            f"(lambda_max = {lam:.3f}, n = {n}). The judgement that disagrees most with "
            f"the others is {worst.row!r} vs {worst.column!r}: given "
            f"{_ratio_text(worst.given)}, the other judgements imply about "
            f"{_ratio_text(worst.implied)}",
            where=f"row {worst.row!r}, column {worst.column!r}",
            hint=f"Revisit that judgement (try a value nearer {_ratio_text(worst.implied)}) "
            "and run again, or pass force=True to accept the weights as they are",
        )
    return result


def _judgement_value(raw: object, *, where: str) -> float:
    """Parse a positive finite judgement from a number or a string like "3" or "1/3"."""
    try:
        value = float(Fraction(raw.strip())) if isinstance(raw, str) else float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, ZeroDivisionError):
        raise InputError(
            f"a judgement must be a positive number such as 3 or '1/3', got {raw!r}",
            where=where,
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(
            f"a judgement must be a positive number such as 3 or '1/3', got {raw!r}",
            where=where,
        )
    return value


def _as_matrix(
    matrix: pd.DataFrame | np.ndarray | Sequence[Sequence[float]],
    criteria: Sequence[str] | None,
) -> tuple[list[str], np.ndarray]:
    """Names and a float array from a DataFrame or an array-like, checking the shape."""
    if isinstance(matrix, pd.DataFrame):
        rows = [str(c) for c in matrix.index]
        cols = [str(c) for c in matrix.columns]
        if rows != cols:
            raise InputError(
                "the comparison matrix must have the same criteria, in the same order, "
                f"on rows and columns; rows are {rows}, columns are {cols}",
                hint="Reorder with matrix.loc[names, names]",
            )
        if criteria is not None and [str(c) for c in criteria] != rows:
            raise InputError(
                f"criteria {list(criteria)} do not match the matrix labels {rows}",
                where="criteria",
            )
        names = rows
        values: object = matrix.to_numpy()
    else:
        values = matrix
        names = []
    try:
        a = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(
            "the comparison matrix must contain only numbers",
            hint="Write fractions as numbers (1/3) or build it with pairwise_matrix()",
        ) from None
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise InputError(f"the comparison matrix must be square, got shape {a.shape}")
    n = a.shape[0]
    if n == 0:
        raise InputError("the comparison matrix is empty")
    if n > max(RANDOM_INDEX):
        raise InputError(
            f"{n} criteria is more than the {max(RANDOM_INDEX)} the random index table "
            "covers (and more than people can compare consistently)",
            hint="Group the criteria into a hierarchy and compare within each group",
        )
    if not names:
        if criteria is None:
            names = [f"c{i + 1}" for i in range(n)]
        else:
            names = [str(c) for c in criteria]
            if len(names) != n:
                raise InputError(
                    f"{len(names)} criteria names for a {n} x {n} matrix", where="criteria"
                )
    if len(set(names)) != n:
        raise InputError(f"criteria names must be unique, got {names}", where="criteria")
    return names, a


def _validate(a: np.ndarray, names: list[str]) -> None:
    """Raise an InputError naming the first bad cell (finite, positive, diagonal, reciprocal)."""

    def cell(i: int, j: int) -> str:
        return f"row {names[i]!r}, column {names[j]!r}"

    bad = np.argwhere(~np.isfinite(a))
    if len(bad):
        i, j = bad[0]
        raise InputError(f"the entry is not a finite number ({a[i, j]})", where=cell(i, j))
    bad = np.argwhere(a <= 0)
    if len(bad):
        i, j = bad[0]
        raise InputError(
            f"entries must be positive, got {a[i, j]:g}",
            where=cell(i, j),
            hint="Use 1/3 (not -3 or 0) when the column criterion is the more important",
        )
    diag = np.flatnonzero(np.abs(np.diag(a) - 1.0) > _DIAGONAL_ATOL)
    if len(diag):
        i = int(diag[0])
        raise InputError(
            f"a criterion compared with itself must be 1, got {a[i, i]:g}", where=cell(i, i)
        )
    product = a * a.T
    off = np.argwhere(np.triu(np.abs(product - 1.0) > _RECIPROCAL_RTOL, k=1))
    if len(off):
        i, j = off[0]
        others = f" ({len(off) - 1} more pair(s) likewise)" if len(off) > 1 else ""
        raise InputError(
            f"the matrix is not reciprocal: {a[i, j]:g} here but {a[j, i]:g} in the mirrored "
            f"cell, whose product is {product[i, j]:.4g} instead of 1{others}",
            where=cell(i, j),
            hint=f"Set row {names[j]!r}, column {names[i]!r} to 1/{a[i, j]:g}, or build the "
            "matrix with pairwise_matrix() which fills in reciprocals",
        )


def _symmetrise(a: np.ndarray) -> np.ndarray:
    """Make a nearly reciprocal matrix exactly reciprocal.

    Uses the geometric mean of ``a_ij`` and ``1 / a_ji``, so 0.33 typed for 1/3 opposite
    a 3 becomes 3.0151.../0.3316..., treating both cells as equally trustworthy.
    """
    log_a = np.log(a)
    log_a = 0.5 * (log_a - log_a.T)
    return np.exp(log_a)


def _ratio_text(x: float) -> str:
    """'3', '1/3' or '2.4': how a planner would write a judgement."""
    if x >= 1:
        return f"{x:.3g}" if abs(x - round(x)) > 0.05 else f"{round(x)}"
    inv = 1.0 / x
    return f"1/{inv:.3g}" if abs(inv - round(inv)) > 0.05 else f"1/{round(inv)}"
