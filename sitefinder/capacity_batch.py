"""Unit layouts of many clearly convex plots at once, orientation by orientation.

Clearly convex plots (rectangles and other convex outlines) are laid out a thousand at
a time: their rings are rotated by one stack of matrix products, their lattices are
numbers (start, step, count), and the positions where a unit fits are solved per
lattice row and column as a span from the edges, with no grid of positions at all; only
the greedy runs per plot, with the bit sets of :mod:`sitefinder.capacity_search`
(tests/test_capacity_batch.py holds this to the plot-by-plot search, float for float).
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from sitefinder.capacity_search import (
    _EDGE_HAIR_M,
    _NO_UNITS,
    _RING_X,
    _RING_Y,
    _greedy_bits,
    _Picks,
    _PlotRotated,
    _Plots,
    _rotation,
    _segment_ranges,
    _stencil,
    _units_with_room,
)
from sitefinder.settings import CapacitySettings

#: Clearly convex plots laid out together, per orientation: enough that array calls cost
#: little per plot, few enough that the arrays stay small.
_CONVEX_BATCH = 1_000

class _Axis:
    """One axis of the lattices of many plots: ``np.arange(low, high, step)`` as numbers.

    The positions are the very floats ``np.arange`` makes (``start + i * delta`` with
    ``delta = (start + step) - start``, the second one ``start + step``), so a lattice
    position is computed, never stored, and equals the one the per-plot code tests.
    """

    def __init__(
        self, start: np.ndarray, step: np.ndarray, count: np.ndarray, delta: np.ndarray
    ) -> None:
        self.start, self.step, self.count, self.delta = start, step, count, delta

    @classmethod
    def between(cls, low: np.ndarray, high: np.ndarray, step: np.ndarray) -> _Axis:
        """The lattices ``np.arange(low, high, step)``."""
        count = np.maximum(np.ceil((high - low) / step), 0).astype(np.int64)
        return cls(low, step, count, (low + step) - low)

    def take(self, k: np.ndarray) -> _Axis:
        """The lattices ``k`` only."""
        return _Axis(self.start[k], self.step[k], self.count[k], self.delta[k])

    def at(self, k: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Position ``i`` of lattice ``k``."""
        out = self.start[k] + i * self.delta[k]
        second = np.flatnonzero(i == 1)
        out[second] = self.start[k[second]] + self.step[k[second]]
        return out


class _EdgeTests:
    """The edge tests of many (line, edge) pairs along lattice lines, solved as spans.

    The test is the per-plot one, ``line_term + (normal * (x - edge_start) + corner)``
    above a bound, in the same floats. Along a line it is monotonic (rounding keeps
    order), so the positions passing it are a prefix (normal < 0), a suffix (normal > 0),
    or all or none (normal 0): the threshold is solved for, and where the solution is
    within rounding of a whole position, checked with the test itself and moved where
    rounding put it one off.
    """

    def __init__(
        self, owner: np.ndarray, line_term: np.ndarray, normal: np.ndarray,
        edge_start: np.ndarray, corner: np.ndarray, axis: _Axis, slack: np.ndarray,
    ) -> None:
        self.owner, self.term, self.normal = owner, line_term, normal
        self.edge_start, self.corner, self.axis = edge_start, corner, axis
        self.count = axis.count[owner]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Position of the solution = (offset - term) * scale + shift.
            self.scale = 1.0 / (normal * axis.delta[owner])
            self.shift = (edge_start - axis.start[owner]) / axis.delta[owner]
            # Far more than rounding can move the solution, in positions: ``slack`` (a
            # thousand times the rounding of the test, in metres, for the plot's size)
            # over the test's change per position. Further than this from a whole
            # position, rounding cannot change the answer.
            self.tolerance = slack[owner] * np.abs(self.scale) + 1e-9
        self.up, self.down = normal > 0, normal < 0

    def passes(self, pairs: np.ndarray, i: np.ndarray, bound: float, strict: bool) -> np.ndarray:
        """The test of ``pairs`` at positions ``i``, as the per-plot code computes it."""
        x = self.axis.at(self.owner[pairs], i)
        value = self.term[pairs] + (
            self.normal[pairs] * (x - self.edge_start[pairs]) + self.corner[pairs]
        )
        return value > bound if strict else value >= bound

    def spans(self, bound: float, strict: bool) -> tuple[np.ndarray, np.ndarray]:
        """First and last passing position of every pair (first > last when none pass)."""
        up, down, count = self.up, self.down, self.count
        with np.errstate(invalid="ignore", over="ignore"):
            solved = (bound - self.term - self.corner) * self.scale + self.shift
            certain = np.abs(solved - np.round(solved)) > self.tolerance
            # Up: the first position at or after the solution; down: the last at or
            # before it; within the line. (Edges along the line give NaN, unused.)
            guess = np.where(up, np.ceil(solved), np.floor(solved))
            shift = down.view(np.int8)
            t = np.clip(guess, -shift, count - shift).astype(np.int64)
        # Suffix: t is the first passing position; prefix: t is the last one. Check t
        # and its neighbour on the failing side.
        todo = np.flatnonzero((up | down) & ~certain)
        while todo.size:
            sub_up = up[todo]
            inner = t[todo]
            outer = np.where(sub_up, inner - 1, inner + 1)
            n_sub = count[todo]
            bad_in = (inner >= 0) & (inner < n_sub) & ~self.passes(
                todo, np.clip(inner, 0, None), bound, strict)
            bad_out = (outer >= 0) & (outer < n_sub) & self.passes(
                todo, np.clip(outer, 0, None), bound, strict)
            wrong = bad_in | bad_out
            todo, bad_in, sub_up = todo[wrong], bad_in[wrong], sub_up[wrong]
            # A failing threshold moves towards the passing side, a passing neighbour
            # moves it outwards.
            t[todo] += np.where(bad_in == sub_up, 1, -1)
        first = np.where(up, t, 0)
        last = np.where(down, t, count - 1)
        flat = np.flatnonzero(~(up | down))  # an edge along the line: all or none pass
        none = flat[~self.passes(flat, np.zeros_like(flat), bound, strict)]
        first[none] = count[none]
        return first, last


class _Frame:
    """Many plots turned to one orientation each: rotated rings, extents and lattices."""

    def __init__(
        self, plots: _Plots, members: np.ndarray, angles: np.ndarray, steps: np.ndarray,
        settings: CapacitySettings,
    ) -> None:
        w, h = settings.unit_width_m, settings.unit_length_m
        self.members, self.angles = members, angles
        sizes = plots.start[members + 1] - plots.start[members]
        self.ring_first, self.ring_sizes = np.cumsum(sizes) - sizes, sizes
        self.xy = _rotate_rings(plots, members, sizes, angles)
        low = np.minimum.reduceat(self.xy, self.ring_first, axis=0)
        high = np.maximum.reduceat(self.xy, self.ring_first, axis=0)
        self.span = high - low
        self.x = _Axis.between(low[:, 0], (high[:, 0] - w) + 1e-9, steps)
        self.y = _Axis.between(low[:, 1], (high[:, 1] - h) + 1e-9, steps)


def _rotate_rings(
    plots: _Plots, members: np.ndarray, sizes: np.ndarray, angles: np.ndarray
) -> np.ndarray:
    """The local rings of ``members`` rotated by ``-angles``, concatenated.

    ``xy_local @ rotation.T`` as for one plot: a stack of matrix products goes through
    the same BLAS kernel, which fuses multiply and add, so the floats are the same; rings
    of equal length are stacked together.
    """
    out = np.empty((int(sizes.sum()), 2))
    where = np.cumsum(sizes) - sizes
    rot_t = _rotations_t([-a for a in angles.tolist()])
    for size in np.unique(sizes).tolist():
        group = np.flatnonzero(sizes == size)
        at = plots.start[members[group]][:, None] + np.arange(size)
        local = plots.xy[at] - plots.origin[members[group]][:, None, :]
        out[where[group][:, None] + np.arange(size)] = local @ rot_t[group]
    return out


def _rotations_t(degrees: list[float]) -> np.ndarray:
    """``_rotation(d).T`` for every angle ``d``, stacked: the same floats (math's)."""
    rad = [math.radians(d) for d in degrees]
    cos = np.array([math.cos(r) for r in rad])
    sin = np.array([math.sin(r) for r in rad])
    rot_t = np.empty((len(degrees), 2, 2))
    rot_t[:, 0, 0], rot_t[:, 0, 1], rot_t[:, 1, 0], rot_t[:, 1, 1] = cos, sin, -sin, cos
    return rot_t


def _unit_rings_many(
    corners: np.ndarray, angles: list[float], origins: np.ndarray, w: float, h: float
) -> np.ndarray:
    """:func:`_unit_rings` of many plots with as many units each, shape (plots, units, 5, 2).

    The matrix products are stacked, which keeps the floats of one product per plot.
    """
    x = np.stack([corners[..., 0], corners[..., 0] + w], axis=-1)[..., _RING_X]
    y = np.stack([corners[..., 1], corners[..., 1] + h], axis=-1)[..., _RING_Y]
    ring = np.stack([x, y], axis=-1)
    plots, units = corners.shape[:2]
    moved = ring.reshape(plots, units * 5, 2) @ _rotations_t(angles) + origins[:, None, :]
    return moved.reshape(plots, units, 5, 2)


def _winners_rings(
    best: list, best_n: np.ndarray, origins: np.ndarray, settings: CapacitySettings
) -> list[np.ndarray]:
    """The unit rings of the best layouts found, plots with as many units together."""
    rings = [_NO_UNITS] * len(best)
    corners = [_lattice_corners(*best[j][1:]) if best_n[j] else None for j in range(len(best))]
    for units in np.unique(best_n[best_n > 0]).tolist():
        group = np.flatnonzero(best_n == units)
        drawn = _unit_rings_many(
            np.array([corners[j] for j in group.tolist()]),
            [best[j][0] for j in group.tolist()], origins[group],
            settings.unit_width_m, settings.unit_length_m,
        )
        for j, ring in zip(group.tolist(), drawn, strict=True):
            rings[j] = ring
    return rings


def _lattice_corners(
    lattice: tuple[float, ...], view: int, width: int, bits: list[int]
) -> list[tuple[float, float]]:
    """Lower-left corners of picked bits (see :func:`_fill_orders`), in Python floats.

    ``lattice`` is (start, step, delta) of x and of y: the floats of :class:`_Axis`.
    """
    x0, x_step, x_delta, y0, y_step, y_delta = lattice
    out = []
    for bit in bits:
        i, j = divmod(bit, width)
        row, col = (j, i) if view else (i, j)
        out.append((x0 + x_step if col == 1 else x0 + col * x_delta,
                    y0 + y_step if row == 1 else y0 + row * y_delta))
    return out


def _layout_convex(
    plots: _Plots, members: np.ndarray, settings: CapacitySettings
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Units and unit rings of clearly convex plots, laid out together.

    The same search as :func:`_layout_plot`, orientation by orientation for all plots at
    once: each plot's rotated ring, lattice and fitting positions come from array calls
    over all plots (fitting positions as a span per lattice row and column, solved from
    the edges, GEOS asked about the units within a hair of an edge in one call), and only
    the greedy placement, on Python integers, runs per plot.
    """
    cap = settings.max_units_per_site
    n = members.size
    best_n = np.zeros(n, dtype=np.int64)
    best: list[tuple | None] = [None] * n
    steps = np.maximum(settings.position_step_m, np.sqrt(plots.build_area[members] / 20_000))
    base = plots.base[members]
    active = np.arange(n)
    for k in range(settings.n_angles):
        if not active.size:
            break
        angles = (base[active] + k * 180.0 / settings.n_angles) % 180.0
        frame = _Frame(plots, members[active], angles, steps[active], settings)
        most = _most_units_all(frame.span, settings)
        keep = (most > best_n[active]) & (frame.x.count > 0) & (frame.y.count > 0)
        if keep.any():
            _place_frame(plots, frame, np.flatnonzero(keep), most, active, best_n, best,
                         settings)
        active = active[best_n[active] < cap]
    return best_n, _winners_rings(best, best_n, plots.origin[members], settings)


def _most_units_all(span: np.ndarray, settings: CapacitySettings) -> np.ndarray:
    """:func:`_most_units` of every plot's rotated extent, in the same floats."""
    span_x = span[:, 0] - settings.unit_width_m
    span_y = span[:, 1] - settings.unit_length_m
    diagonal = max(settings.unit_spacing_m - 1e-6, 0.0) / math.sqrt(2)
    a = settings.unit_width_m + diagonal - 1e-6
    b = settings.unit_length_m + diagonal - 1e-6
    most = (np.floor(np.maximum(span_x, 0.0) / a) + 1) * (np.floor(np.maximum(span_y, 0.0) / b) + 1)
    most[(span_x < -1e-9) | (span_y < -1e-9)] = 0
    return most.astype(np.int64)


def _place_frame(
    plots: _Plots, frame: _Frame, keep: np.ndarray, most: np.ndarray, active: np.ndarray,
    best_n: np.ndarray, best: list, settings: CapacitySettings,
) -> None:
    """Lay units out on the ``keep`` plots of ``frame``; better layouts go to ``best``."""
    w, h, s = settings.unit_width_m, settings.unit_length_m, settings.unit_spacing_m
    extras, cap = settings.extras_area_m2, settings.max_units_per_site
    fits = _FrameFits(plots, frame, keep, settings)
    (row_ints, row_widths), (col_ints, col_widths) = fits.bits(True), fits.bits(False)
    members = frame.members[keep]
    # Plain Python numbers in the loop: numpy scalars cost more per operation.
    owners = active[keep].tolist()
    bounds = np.minimum(most[keep], cap).tolist()
    areas = plots.plot_area[members].tolist()
    angles = frame.angles[keep].tolist()
    wide, long = w + s, h + s
    for j, i in enumerate(members.tolist()):
        a = owners[j]
        found = int(best_n[a])
        stencil = fits.stencils[j]
        if row_ints[j].bit_count() <= found:
            continue  # fewer positions than units already placed: nothing to gain
        views = ((row_ints[j], row_widths[j], *stencil.bits(0, row_widths[j])),
                 (col_ints[j], col_widths[j], *stencil.bits(1, col_widths[j])))
        for order in range(4):
            view = order % 2
            free, width, block, centre = views[view]
            picked = _greedy_bits(free, block, centre, cap, order >= 2)
            placed = len(picked)
            if placed <= found:
                continue
            # The quick bound of _units_with_room first, without arrays.
            if extras <= 0 or areas[j] - placed * wide * long >= placed * extras + 1e-6:
                room = placed
            else:
                xs, ys = fits.corners(j, _Picks(picked, view, width))
                rot = _rotation(-angles[j])
                room = _units_with_room(
                    xs, ys, settings, _PlotRotated(plots.polys[i], plots.origin[i], rot),
                    areas[j],
                )
            if room > found:
                found = room
                best[a] = (angles[j], fits.lattice[j], view, width, picked[:room])
            if found >= bounds[j]:
                break
        best_n[a] = found


class _FrameFits:
    """Where a unit fits on the lattices of many plots in one orientation, as spans.

    Per lattice row (and per column, for the column orders) the span of positions
    whose four corners are clearly inside every edge (depth above the hair, as in
    :func:`_convex_fits_xy`), and the single positions within a hair of an edge that
    GEOS says fit. A convex area's fitting positions per row are one span: the edge
    tests are each monotonic along the row.
    """

    def __init__(
        self, plots: _Plots, frame: _Frame, keep: np.ndarray, settings: CapacitySettings
    ) -> None:
        w, h = settings.unit_width_m, settings.unit_length_m
        self.settings = settings
        self.keep = keep
        self.x, self.y = frame.x.take(keep), frame.y.take(keep)
        self.lattice = list(zip(*(a.tolist() for a in (
            self.x.start, self.x.step, self.x.delta, self.y.start, self.y.step, self.y.delta
        )), strict=True))
        sizes = frame.ring_sizes[keep]
        point = _segment_ranges(frame.ring_first[keep], sizes)
        self.ring = frame.xy[point]
        self.ring_sizes = sizes
        first = np.cumsum(sizes) - sizes
        size = np.maximum.reduceat(np.abs(self.ring).max(axis=1), first) + w + h
        self.slack = 1e-12 * (1.0 + size)
        edge_at = _segment_ranges(first, sizes - 1)  # edges i -> i + 1 of the closed rings
        self.edge_count = sizes - 1
        self.edge_first = np.cumsum(self.edge_count) - self.edge_count
        a = self.ring[edge_at]
        edge = self.ring[edge_at + 1] - a
        owner = np.repeat(np.arange(keep.size), self.edge_count)
        ccw = plots.convex[frame.members[keep]] > 0
        turn = np.where(ccw[owner], 1.0, -1.0) / np.hypot(edge[:, 0], edge[:, 1])
        nx, ny = -edge[:, 1] * turn, edge[:, 0] * turn
        self.edges = (a, nx, ny, np.minimum(nx * w, 0.0), np.minimum(ny * h, 0.0))
        steps = self.x.step
        self.stencils = [_stencil(settings, step) for step in steps.tolist()]
        reach = {id(st): st.reach[0] for st in self.stencils}
        self.reach = np.array([reach[id(st)] for st in self.stencils], dtype=np.int64)
        self.rows = self._spans(by_rows=True, with_hair=True)
        self.cols = self._spans(by_rows=False, with_hair=False)
        self.near = self._near_edges(plots, frame, keep)

    def _spans(self, by_rows: bool, with_hair: bool) -> tuple:
        """Per line (row or column): the span clearly fitting, and the span not clearly out."""
        a, nx, ny, mx, my = self.edges
        lines_axis, along = (self.y, self.x) if by_rows else (self.x, self.y)
        lines = lines_axis.count
        line_owner = np.repeat(np.arange(lines.size), lines)
        line_index = _segment_ranges(np.zeros_like(lines), lines)
        per_line = self.edge_count[line_owner]
        pair_line = np.repeat(np.arange(line_owner.size), per_line)
        pair_owner = line_owner[pair_line]
        line_first = np.cumsum(per_line) - per_line
        pair_edge = self.edge_first[pair_owner] + (
            np.arange(pair_line.size) - line_first[pair_line]
        )
        position = lines_axis.at(line_owner, line_index)[pair_line]
        if by_rows:
            term = ny[pair_edge] * (position - a[pair_edge, 1]) + my[pair_edge]
            normal, start, corner = nx[pair_edge], a[pair_edge, 0], mx[pair_edge]
        else:
            term = nx[pair_edge] * (position - a[pair_edge, 0]) + mx[pair_edge]
            normal, start, corner = ny[pair_edge], a[pair_edge, 1], my[pair_edge]
        tests = _EdgeTests(pair_owner, term, normal, start, corner, along, self.slack)
        first, last = tests.spans(_EDGE_HAIR_M, True)
        lo = np.maximum.reduceat(first, line_first)
        hi = np.minimum.reduceat(last, line_first)
        if not with_hair:
            return line_owner, line_index, lo, hi
        first, last = tests.spans(-_EDGE_HAIR_M, False)
        return (line_owner, line_index, lo, hi,
                np.maximum.reduceat(first, line_first), np.minimum.reduceat(last, line_first))

    def _near_edges(self, plots: _Plots, frame: _Frame, keep: np.ndarray) -> tuple:
        """The positions within a hair of an edge that fit, as GEOS says: (plot, row, col)."""
        w, h = self.settings.unit_width_m, self.settings.unit_length_m
        owner, row, lo, hi, out_lo, out_hi = self.rows
        empty = lo > hi
        # Not clearly out and not clearly in: left and right of the clear span.
        left_hi = np.where(empty, out_hi, np.minimum(out_hi, lo - 1))
        right_lo = np.where(empty, out_hi + 1, np.maximum(out_lo, hi + 1))
        starts = np.concatenate([out_lo, right_lo])
        sizes = np.maximum(np.concatenate([left_hi, out_hi]) - starts + 1, 0)
        line = np.tile(np.arange(owner.size), 2)
        cell_line = np.repeat(line, sizes)
        col = _segment_ranges(starts, sizes)
        cell_owner, cell_row = owner[cell_line], row[cell_line]
        if not col.size:
            return cell_owner, cell_row, col
        xs = self.x.at(cell_owner, col)
        ys = self.y.at(cell_owner, cell_row)
        x1, y1 = xs + w, ys + h
        used = np.unique(cell_owner)
        point = _segment_ranges(np.cumsum(self.ring_sizes) - self.ring_sizes, self.ring_sizes)
        ring_owner = np.repeat(np.arange(keep.size), self.ring_sizes)
        xy = self.ring[point[np.isin(ring_owner, used)]]
        geoms = np.empty(keep.size, dtype=object)
        geoms[used] = shapely.transform(plots.build[frame.members[keep[used]]], lambda _: xy)
        # Prepared, GEOS tests a point against an area about three times as fast.
        shapely.prepare(geoms[used])
        # The corners as the unit's polygon has them (the same floats x + w, y + h).
        corners = shapely.intersects_xy(
            np.tile(geoms[cell_owner], 4),
            np.concatenate([xs, x1, x1, xs]),
            np.concatenate([ys, ys, y1, y1]),
        )
        yes = corners.reshape(4, -1).all(axis=0)
        return cell_owner[yes], cell_row[yes], col[yes]

    def bits(self, by_rows: bool) -> tuple[list[int], list[int]]:
        """Each plot's fitting positions as an integer (see :func:`_fill_orders`), and widths.

        Rows of ``width`` bits, one per lattice row (per column when not ``by_rows``),
        each followed by room for the stencil's reach.
        """
        owner, line, lo, hi = (self.rows if by_rows else self.cols)[:4]
        near_owner, near_row, near_col = self.near
        near_line, near_pos = (near_row, near_col) if by_rows else (near_col, near_row)
        lines, along = (self.y.count, self.x.count) if by_rows else (self.x.count, self.y.count)
        reach = self.reach[:, 1] if by_rows else self.reach[:, 0]
        width = np.maximum(along + reach, 2 * reach + 1)
        n_bytes = (lines * width + 7) // 8
        first_bit = (np.cumsum(n_bytes) - n_bytes) * 8
        canvas = np.zeros(int(n_bytes.sum()) * 8, dtype=bool)
        run = np.maximum(hi - lo + 1, 0)
        canvas[_segment_ranges(first_bit[owner] + line * width[owner] + lo, run)] = True
        canvas[first_bit[near_owner] + near_line * width[near_owner] + near_pos] = True
        packed = memoryview(np.packbits(canvas, bitorder="little"))
        ints = [int.from_bytes(packed[b // 8 : b // 8 + n], "little")
                for b, n in zip(first_bit.tolist(), n_bytes.tolist(), strict=True)]
        return ints, width.tolist()

    def corners(self, j: int, picks: _Picks) -> tuple[np.ndarray, np.ndarray]:
        """Lower-left corners (xs, ys) of plot ``j``'s picks, in the rotated frame."""
        rows, cols = picks.cells()
        at = np.full(rows.size, j)
        return self.x.at(at, cols), self.y.at(at, rows)
