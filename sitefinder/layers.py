"""Thematic layers: built from OSM by the scenario's tag rules, stored as GeoPackages.

Each layer is one file ``<layers_dir>/<name>.gpkg`` (layer name = file stem) in the local
metric CRS, so a planner can open it in QGIS, add a planned bus stop or a new NAV office,
and save. On the next run that file is used as it is:

* a file sitefinder wrote and nobody touched is rebuilt when the OSM file or the layer's
  rules change (the record is in ``<layers_dir>/sitefinder-derived.json``, see
  :mod:`sitefinder.derived`);
* a file whose checksum differs from what sitefinder wrote, or that sitefinder never
  wrote, is the user's and is never overwritten;
* a layer whose scenario entry names a ``file`` is read from that file.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from sitefinder.config import LayerSpec, Scenario
from sitefinder.derived import Ledger
from sitefinder.errors import InputError
from sitefinder.sources.osm import KEPT_KEYS, OsmData

_LAYER_COLUMNS = ["layer", "osm_type", "osm_id", "name", "kind", "geometry"]
#: How layer files are laid out; a derived file written in an older layout (one layer of
#: mixed geometry, no QGIS style) is rebuilt, a user's file is read as it is.
#: 2: one GeoPackage layer per geometry type (``<name>_points`` …) and ``layer_styles``.
LAYER_FILE_FORMAT = 2


@dataclass
class LayerSet:
    """The thematic layers of one run, in the local CRS.

    Attributes
    ----------
    frames : dict of str to GeoDataFrame
        Layer name → features (columns ``layer, osm_type, osm_id, name, kind, geometry``).
    origin : dict of str to str
        Layer name → ``"built"``, ``"reused"``, ``"user-edited"`` or ``"user-file"``.
    paths : dict of str to Path
        Layer name → file the layer was read from or written to.
    """

    frames: dict[str, gpd.GeoDataFrame]
    origin: dict[str, str]
    paths: dict[str, Path]

    def __getitem__(self, name: str) -> gpd.GeoDataFrame:
        return self.frames[name]

    def empty(self) -> set[str]:
        """Names of the layers without a single feature (their criteria are left out)."""
        return {name for name, frame in self.frames.items() if len(frame) == 0}


def _rule_mask(frame: pd.DataFrame, tags: dict, name_regex: str | None) -> np.ndarray:
    mask = np.ones(len(frame), dtype=bool)
    for key, values in tags.items():
        column = frame[key]
        if values == "*" or "*" in values:  # `"*"` and `["*"]` both mean "any value"
            mask &= column.notna().to_numpy()
        else:
            mask &= column.isin(values).to_numpy()
    if name_regex:
        names = frame["name"].fillna("")
        mask &= names.str.contains(re.compile(name_regex), regex=True).to_numpy()
    return mask


def _kind_labels(frame: pd.DataFrame, spec: LayerSpec) -> pd.Series:
    """``key=value`` of the first rule key that matched, to tell users why a feature is here."""
    kind = pd.Series("", index=frame.index, dtype=object)
    for rule in spec.rules:
        mask = _rule_mask(frame, rule.tags, rule.name_regex) & (kind == "").to_numpy()
        key = next(iter(rule.tags))
        kind[mask] = key + "=" + frame.loc[mask, key].astype(str)
    return kind


def plain_tag_values(spec: LayerSpec, key: str) -> set[str]:
    """Values of ``key`` that put a feature in the layer on their own.

    Only rules with that one key and no other condition (name, area, inside another layer)
    count, e.g. the typed buildings of the ``dwellings`` layer. Scripts and tests that must
    agree with a scenario's layer read its values here instead of copying the list.

    Examples
    --------
    >>> from sitefinder.config import default_scenario
    >>> "house" in plain_tag_values(default_scenario().layers["dwellings"], "building")
    True
    """
    values: set[str] = set()
    for rule in spec.rules:
        plain = rule.name_regex is None and rule.inside_layer is None and not rule.min_area_m2
        if plain and set(rule.tags) == {key} and rule.tags[key] != "*":
            values |= set(rule.tags[key])
    return values


def check_layer_keys(scenario: Scenario) -> None:
    """Refuse tag rules on OSM keys the reader does not keep (they would match nothing)."""
    problems = []
    for name, spec in scenario.layers.items():
        for i, rule in enumerate(spec.rules):
            for key in rule.tags:
                if key not in KEPT_KEYS:
                    problems.append(f"layers.{name}.rules.{i}.tags.{key}")
    if problems:
        raise InputError(
            f"tag rules use OSM keys sitefinder does not read: {', '.join(problems)}",
            where="scenario",
            hint=f"Use one of: {', '.join(KEPT_KEYS)}",
        )


def extract_layer(
    osm: OsmData,
    spec: LayerSpec,
    name: str,
    crs: CRS,
    others: dict[str, gpd.GeoDataFrame] | None = None,
) -> gpd.GeoDataFrame:
    """Select the features of one layer from OSM data and project them to ``crs``.

    Parameters
    ----------
    osm : OsmData
    spec : LayerSpec
        The layer's tag rules.
    name : str
        Layer name.
    crs : CRS
        Local metric CRS of the result.
    others : dict of str to GeoDataFrame, optional
        Layers built before this one, for rules with ``inside_layer``.
    """
    sources = {
        "points": [osm.points],
        "lines": [osm.lines],
        "areas": [osm.areas],
        "any": [osm.points, osm.lines, osm.areas],
    }[spec.geometry]
    picked = []
    for frame in sources:
        if not len(frame):
            continue
        mask = np.zeros(len(frame), dtype=bool)
        for rule in spec.rules:
            mask |= _rule_mask(frame, rule.tags, rule.name_regex)
        if mask.any():
            sub = frame.loc[mask].drop(columns=["node_ids"], errors="ignore").copy()
            sub["kind"] = _kind_labels(sub, spec)
            picked.append(sub)
    if not picked:
        return empty_layer(name, crs)
    features = gpd.GeoDataFrame(pd.concat(picked, ignore_index=True), crs=osm.points.crs)
    features = features.to_crs(crs)
    features = features[_rule_conditions(features, spec, others or {})]
    if spec.min_area_m2 > 0:
        features = features[features.geometry.area >= spec.min_area_m2]
    features["layer"] = name
    features["osm_id"] = features["osm_id"].astype("int64")
    return gpd.GeoDataFrame(features[_LAYER_COLUMNS].reset_index(drop=True), crs=crs)


def _rule_conditions(
    features: gpd.GeoDataFrame, spec: LayerSpec, others: dict[str, gpd.GeoDataFrame]
) -> np.ndarray:
    """Keep features that meet the spatial conditions of at least one rule they match.

    A feature passes when some rule matches its tags and that rule's ``min_area_m2`` and
    ``inside_layer`` conditions hold (a point or line is never below an area minimum).
    """
    keep = np.zeros(len(features), dtype=bool)
    geoms = features.geometry.to_numpy()
    area = shapely.area(geoms)
    for rule in spec.rules:
        match = _rule_mask(features, rule.tags, rule.name_regex)
        if rule.min_area_m2 > 0:
            match &= area >= rule.min_area_m2
        if rule.inside_layer is not None and match.any():
            zones = others.get(rule.inside_layer)
            inside = np.zeros(len(features), dtype=bool)
            if zones is not None and len(zones):
                tree = shapely.STRtree(zones.geometry.to_numpy())
                idx = np.flatnonzero(match)
                # A building counts as inside by its representative point: one that
                # straddles the edge of the zone belongs where most of it is.
                points = shapely.point_on_surface(geoms[idx])
                hit, _ = tree.query(points, predicate="within")
                inside[idx[np.unique(hit)]] = True
            match &= inside
        keep |= match
    return keep


def empty_layer(name: str, crs: CRS) -> gpd.GeoDataFrame:
    """A layer with the standard columns and no features."""
    return gpd.GeoDataFrame(
        {c: pd.Series(dtype=object) for c in _LAYER_COLUMNS if c != "geometry"},
        geometry=gpd.GeoSeries([], crs=crs),
        crs=crs,
    )


def layer_key(osm_sha256: str, spec: LayerSpec, crs: CRS) -> str:
    """Key of the inputs a layer file is built from: the OSM file, its rules and the CRS.

    The user's own files (``file``, ``add_files``) are not part of it: they are read on
    every run, never stored in the derived file, and the same file named by a relative or
    an absolute path must not make the layer look stale.
    """
    rules = spec.model_dump(
        mode="json", exclude={"label_nb", "label_en", "file", "add_files"}
    )
    return json.dumps(
        {"osm": osm_sha256, "rules": rules, "crs": crs.to_string(), "format": LAYER_FILE_FORMAT},
        sort_keys=True,
    )


def _spatial_layers(path: Path) -> list[str | None]:
    """Layers of a vector file that hold geometry, in file order (``[None]``: just read it)."""
    try:
        layers = [str(n) for n, geometry in pyogrio.list_layers(path) if geometry is not None]
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError):
        return [None]  # unreadable: read_layer_file_any reports it with its own message
    return layers or [None]


def _in_build_order(layers: list[str | None], name: str) -> list[str | None]:
    """``<name>_points``, ``_lines``, ``_areas`` first, in the order they were built."""
    order = {part_layer_name(name, part): i for i, part in enumerate(GEOMETRY_PARTS)}
    return sorted(layers, key=lambda layer: order.get(layer or "", len(order)))


def read_layer_file_any(
    path: str | Path, what: str, *, column: str | None = None, field: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read any vector file a user supplies (districts, existing sites), with clear errors.

    Parameters
    ----------
    path : str or Path
        The file.
    what : str
        What it is, for messages ("districts").
    column : str, optional
        A column the file must have.
    field : str, optional
        The scenario field naming that column, for the message.
    layer : str, optional
        The layer to read (default: the first).
    """
    path = Path(path)
    try:
        frame = gpd.read_file(path, layer=layer, engine="pyogrio", on_invalid="ignore")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(
            f"the {what} file could not be read ({str(exc).splitlines()[0]})",
            path=path,
            hint="Open it in QGIS and save it again as GeoPackage",
        ) from None
    if frame.crs is None:
        raise InputError(
            f"the {what} file has no CRS", path=path, hint="Set its CRS in QGIS and save again"
        )
    if column is not None and column not in frame.columns:
        present = ", ".join(c for c in frame.columns if c != frame.geometry.name)
        raise InputError(
            f"the {what} file has no column '{column}'",
            path=path,
            where=f"scenario field {field}" if field else None,
            hint=f"Name one of its columns ({present}) in the scenario, or add the column",
        )
    return frame[~(frame.geometry.isna() | frame.geometry.is_empty)].reset_index(drop=True)


def read_layer_file(path: Path, crs: CRS, name: str) -> gpd.GeoDataFrame:
    """Read a layer file, reprojecting it and filling the standard columns.

    Every layer with geometry in the file is read (``transit_points``,
    ``transit_areas`` … as sitefinder writes them, or whatever layers a user saved);
    tables without geometry, such as QGIS's ``layer_styles``, are not features.
    """
    parts = [read_layer_file_any(path, f"layer '{name}'", layer=layer).to_crs(crs)
             for layer in _in_build_order(_spatial_layers(path), name)]
    frame = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=crs) if len(parts) > 1 \
        else parts[0]
    for column in _LAYER_COLUMNS:
        if column not in frame.columns:
            frame[column] = None
    frame["layer"] = name
    frame["kind"] = frame["kind"].fillna("user")
    return gpd.GeoDataFrame(frame[_LAYER_COLUMNS].reset_index(drop=True), crs=crs)


def build_layers(
    osm: OsmData, scenario: Scenario, crs: CRS, layers_dir: str | Path
) -> LayerSet:
    """Build (or reuse) every layer the scenario defines.

    Parameters
    ----------
    osm : OsmData
        The OSM extract.
    scenario : Scenario
        Supplies the tag → layer rules.
    crs : CRS
        Local metric CRS; layers are stored and returned in it.
    layers_dir : str or Path
        Folder of the layer GeoPackages (created when missing).

    Returns
    -------
    LayerSet
    """
    layers_dir = Path(layers_dir)
    layers_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(layers_dir)
    frames, origin, paths = {}, {}, {}
    for name in build_order(scenario.layers):
        spec = scenario.layers[name]
        if spec.file is not None:
            frames[name] = read_layer_file(spec.file, crs, name)
            origin[name], paths[name] = "user-file", spec.file
            continue
        path = layers_dir / f"{name}.gpkg"
        state = ledger.state(path, layer_key(osm.sha256, spec, crs))
        if state in ("user", "current"):
            frames[name] = read_layer_file(path, crs, name)
            origin[name] = "user-edited" if state == "user" else "reused"
            paths[name] = path
        else:
            layer = extract_layer(osm, spec, name, crs, frames)
            _write_layer(layer, path, name, spec.geometry, spec.label_nb)
            ledger.record(path, layer_key(osm.sha256, spec, crs))
            frames[name], origin[name], paths[name] = layer, "built", path
        if spec.add_files:
            # The municipality's own features join what OSM has (not stored in the
            # derived file, so editing that file in QGIS and adding files stay separate).
            added = [read_layer_file(f, crs, name) for f in spec.add_files]
            frames[name] = gpd.GeoDataFrame(
                pd.concat([frames[name], *added], ignore_index=True), crs=crs
            )
    return LayerSet(frames={n: frames[n] for n in scenario.layers}, origin=origin, paths=paths)


def build_order(layers: dict[str, LayerSpec]) -> list[str]:
    """Layer names with every layer after the layers its rules' ``inside_layer`` name.

    Raises
    ------
    InputError
        A rule names a layer that does not exist, or the references form a cycle.
    """
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in visiting:
            raise InputError(
                f"layers refer to each other in a circle: {' → '.join((*trail, name))}",
                where="scenario layers",
                hint="Remove one of the inside_layer references",
            )
        visiting.add(name)
        for i, rule in enumerate(layers[name].rules):
            if rule.inside_layer is None:
                continue
            if rule.inside_layer not in layers:
                raise InputError(
                    f"layers.{name}.rules.{i}.inside_layer names a layer that does not "
                    f"exist: '{rule.inside_layer}'",
                    where="scenario",
                    hint=f"Use one of: {', '.join(layers)}",
                )
            visit(rule.inside_layer, (*trail, name))
        visiting.discard(name)
        order.append(name)

    for name in layers:
        visit(name, ())
    return order


#: GeoPackage layers of one thematic layer file, one per geometry type, in the order
#: features are extracted (points, lines, areas), so reading them back in this order
#: gives the features in the order they were built.
GEOMETRY_PARTS: dict[str, tuple[str, ...]] = {
    "points": ("Point", "MultiPoint"),
    "lines": ("LineString", "MultiLineString", "LinearRing"),
    "areas": ("Polygon", "MultiPolygon"),
}


def part_layer_name(name: str, part: str) -> str:
    """Name of the GeoPackage layer holding one geometry type of a thematic layer.

    >>> part_layer_name("transit", "points")
    'transit_points'
    """
    return f"{name}_{part}"


def _write_layer(
    layer: gpd.GeoDataFrame, path: Path, name: str, geometry: str = "any", label: str = ""
) -> None:
    """Write a thematic layer as one GeoPackage layer per geometry type, with QGIS styles.

    ``transit`` holds stops (points), platforms drawn as lines and platforms drawn as
    areas: it becomes ``transit_points``, ``transit_lines`` and ``transit_areas`` in
    ``transit.gpkg``, each with a single geometry type, so that a planner can add a
    planned bus stop in QGIS as a point. Only the types present are written; a layer
    without features is written empty, typed by its scenario ``geometry``.
    """
    from sitefinder.qgis_styles import style_layer_file  # light; keeps imports one-way

    if path.exists():
        path.unlink()  # a fresh file: GeoPackages keep stale layers otherwise
    types = layer.geometry.geom_type
    written = False
    for part, names in GEOMETRY_PARTS.items():
        features = layer[types.isin(names).to_numpy()]
        if len(features):
            # One declared type per layer: where Polygon and MultiPolygon mix, all become
            # MultiPolygon (pyogrio's default); stops stay plain points.
            pyogrio.write_dataframe(features, path, layer=part_layer_name(name, part),
                                    driver="GPKG")
            written = True
    known = [t for names in GEOMETRY_PARTS.values() for t in names]
    other = layer[~types.isin(known).to_numpy()]
    if len(other):
        # Never in OSM-built layers; kept rather than lost should a collection appear.
        pyogrio.write_dataframe(other, path, layer=part_layer_name(name, "other"),
                                driver="GPKG")
        written = True
    if not written:
        part = geometry if geometry in GEOMETRY_PARTS else "points"
        kind = {"points": "Point", "lines": "MultiLineString", "areas": "MultiPolygon"}[part]
        pyogrio.write_dataframe(layer.iloc[:0], path, layer=part_layer_name(name, part),
                                driver="GPKG", geometry_type=kind)
    style_layer_file(path, name, label=label or None)
