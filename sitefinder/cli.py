"""The ``sitefinder`` command. Thin: parses arguments, calls the API, prints results.

Bad input ends with exit code 2 and one paragraph naming the file, row or field and what
to do — never a traceback. A damaged cache or ledger is one ``sitefinder: warning:`` line.

One study per output folder: ``select`` and ``report`` take the plots, OSM extract,
scenario, plots CRS, id column and layers folder from the manifest of ``--out`` and refuse
inputs that differ from that study; ``run`` starts a new study when given new inputs and
otherwise reruns the one in ``--out``. Only an output folder without a study falls back
to the bundled demo data, and the command says which files it used.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from sitefinder import __version__
from sitefinder.errors import InputError, SitefinderError

EXIT_BAD_INPUT = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, default=None,
        help="scenario YAML (default: the scenario of the study in --out; for a new study "
        "the shipped default scenario, data/oslo-demo.yaml on the bundled demo data)",
    )
    parser.add_argument(
        "--plots", type=Path, default=None,
        help="candidate plots: GeoPackage, GeoJSON, Shapefile or CSV (default: those of the "
        "study in --out, else the bundled demo data/plots.gpkg)",
    )
    parser.add_argument(
        "--osm", type=Path, default=None,
        help="OpenStreetMap extract, .osm.pbf or .osm (default: that of the study in --out, "
        "else the bundled demo data/oslo-center.osm.pbf)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("output"),
        help="output folder, replaced as a whole when the run is complete (default: "
        "%(default)s)",
    )
    parser.add_argument(
        "--layers", type=Path, default=None,
        help="folder of thematic layer GeoPackages, editable in QGIS (default: that of the "
        "study in --out, else layers)",
    )
    parser.add_argument(
        "--plots-crs", default=None,
        help="CRS of a plot file that declares none, e.g. EPSG:25833",
    )
    parser.add_argument(
        "--id-column", default=None, help="plot id column (default: plot_id)"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="measure again even if a cached table exists"
    )
    parser.add_argument(
        "--offline", action="store_true",
        help="make map.html start on the basemap drawn from the OSM extract and write no "
        "map_offline.html (without this flag map.html starts on online tiles, falls back to "
        "that basemap when they fail, and map_offline.html is written beside it)",
    )
    parser.add_argument(
        "--language", choices=("nb", "en"), default=None,
        help="language of the workbooks, maps and report (default: the scenario's, bokmål "
        "unless it says otherwise)",
    )
    parser.add_argument(
        "--public", action="store_true",
        help="public mode: sensitive layers (existing sites) never appear in any output",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_request(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--units", type=int, help="deliver exactly this many units")
    group.add_argument("--sites", type=int, help="choose exactly this many sites")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="sitefinder",
        description="Rank candidate plots for småhus (small detached homes for people with "
        "substance-use and mental disorders) by walking distance to transit, shops and "
        "services, screening from neighbours and distance from industry.",
        epilog="A run writes into a temporary folder beside --out and puts it in place whole "
        "when complete. A second run into the same --out or --layers waits "
        "SITEFINDER_LOCK_WAIT seconds (default 10), then stops and names the other process.",
    )
    parser.add_argument("--version", action="version", version=f"sitefinder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = sub.add_parser(
        "run",
        help="rank the plots; write ranked.xlsx, ranked.csv, ranked.gpkg, map.html, "
        "map_offline.html, manifest.json",
        description="Rank the candidate plots. With no options, runs again on the study in "
        "output/ (its manifest names the inputs), or on the bundled Oslo demo data when "
        "output/ holds none, and says which files it used.",
    )
    _add_common(run_parser)
    select_parser = sub.add_parser(
        "select",
        help="choose a set of sites under the clustering limits; writes selected.xlsx, "
        "selected.csv and selected.gpkg and draws them on the maps",
        description="Rank the plots, then choose the sites that deliver exactly the requested "
        "number of units (or sites) with the best total score, under the scenario's limits "
        "(units per site, spacing, sites per district, concentration). Solved exactly as a "
        "mixed-integer programme. Works on the study already in --out (its manifest names "
        "the plots, OSM extract and scenario); inputs that differ from it are refused.",
    )
    _add_common(select_parser)
    _add_request(select_parser)
    report_parser = sub.add_parser(
        "report",
        help="write the printable report (report.html, report.pdf) as well as the maps",
        description="Write the meeting report: overview map, ranked table, one page per top "
        "candidate (or selected site, with --units/--sites) and a method page. Works on "
        "the study already in --out; inputs that differ from it are refused.",
    )
    _add_common(report_parser)
    _add_request(report_parser)
    report_parser.add_argument(
        "--top", type=int, default=5, help="candidates given a page each (default: %(default)s)"
    )
    download_parser = sub.add_parser(
        "download",
        help="download OpenStreetMap data for a bounding box (needs the internet)",
        description="Download every OSM feature in a bounding box from Overpass and save it "
        "as an .osm file for --osm. Everything else runs offline from that file.",
    )
    download_parser.add_argument(
        "--bbox", required=True, type=_bbox,
        help="west,south,east,north in degrees, e.g. 10.72,59.90,10.78,59.94",
    )
    download_parser.add_argument("--out", type=Path, required=True, help="the .osm file to write")
    _add_screen(sub)
    _add_batch(sub)
    return parser


def _add_extract_and_scenario(parser: argparse.ArgumentParser, extract: str) -> None:
    """--osm and --scenario of the commands that need no study folder (screen, batch)."""
    parser.add_argument("--osm", type=Path, default=None,
                        help=f"{extract} (default: the bundled data/oslo-center.osm.pbf)")
    parser.add_argument("--scenario", type=Path, default=None,
                        help="scenario YAML (default: the shipped default; "
                        "data/oslo-demo.yaml on the bundled extract)")


def _add_screen(sub) -> None:
    """``sitefinder screen``: candidate cells over the extract or an area, ranked."""
    parser = sub.add_parser(
        "screen",
        help="find land where a house could stand: rank grid cells over the extract or an "
        "area; writes screen_cells.gpkg/.parquet, screen_suitability.tif, screen_areas.gpkg, "
        "screen_map.html",
        description="Without a plot list: lay a grid over the OSM extract (or --area / "
        "--bbox inside it), keep the land of each cell where a house could stand (not on "
        "buildings, water, roads, railway, industrial land or steep terrain), measure and "
        "score it like plots with the scenario, and merge neighbouring good cells into best "
        "areas.",
    )
    _add_extract_and_scenario(parser, "OpenStreetMap extract")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--area", type=Path, default=None,
                       help="polygon file of the area to screen, any CRS (e.g. "
                       "data/oslo_kommune.geojson); default: the whole extract")
    where.add_argument("--bbox", type=_bbox, default=None,
                       help="west,south,east,north in degrees, e.g. 10.75,59.91,10.77,59.92")
    parser.add_argument("--cell-size", type=float, default=50.0,
                        help="grid cell edge in metres, 10-200 (default: %(default)g)")
    parser.add_argument("--out", type=Path, default=Path("screening"),
                        help="output folder, replaced as a whole when complete "
                        "(default: %(default)s)")
    parser.add_argument("--layers", type=Path, default=Path("layers"),
                        help="folder of thematic layer GeoPackages (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_screen(args: argparse.Namespace) -> int:
    """``sitefinder screen``: rank grid cells and print a summary."""
    from sitefinder.screen import screen

    result = screen(args.osm, args.scenario, area=args.area, bbox=args.bbox,
                    cell_size_m=args.cell_size, out=args.out, layers_dir=args.layers)
    for line in result.summary_lines("en"):
        print(line)
    print("Wrote " + ", ".join(str(p) for p in result.outputs.values()))
    print("Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in result.timings.items()
                               if not k.startswith("measure: ")))
    return 0


def _add_batch(sub) -> None:
    """``sitefinder batch``: run or screen many areas as partitions on Dask."""
    parser = sub.add_parser(
        "batch",
        help="run or screen many areas (municipalities, districts, tiles) at once on a Dask "
        "cluster; writes one folder per area, a combined GeoParquet dataset, summary.csv "
        "and overview_map.html",
        description="Each area is one partition: the OSM extract is cut to the area plus the "
        "scenario's largest search distance, and `run` (the plots in the area) or `screen` "
        "(the land in the area) runs on that cut on a Dask worker. A failed partition is "
        "retried once; a rerun skips areas whose inputs and outputs are unchanged.",
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--areas", type=Path,
                       help="polygon file of the areas, any CRS (e.g. data/oslo_bydeler.gpkg, "
                       "or Kartverket's municipalities)")
    where.add_argument("--tiles", type=float, metavar="SIZE_M",
                       help="instead of --areas: square tiles of this many metres over the "
                       "extract")
    parser.add_argument("--id-column", default=None,
                        help="area id column (default: kommunenummer, bydelsnr, area_id or id, "
                        "the first present)")
    parser.add_argument("--mode", choices=("run", "screen"), default="run",
                        help="rank the plots in each area, or screen each area for land "
                        "(default: %(default)s)")
    parser.add_argument("--plots", type=Path, default=None,
                        help="plot file (mode run; default: the bundled demo plots)")
    parser.add_argument("--plots-crs", default=None,
                        help="CRS of a plot file that declares none, e.g. EPSG:25833")
    parser.add_argument("--plot-id-column", default="plot_id",
                        help="plot id column of the plot file (default: %(default)s)")
    _add_extract_and_scenario(parser, "the whole OpenStreetMap extract")
    parser.add_argument("--cell-size", type=float, default=50.0,
                        help="screening grid cell in metres (mode screen; default: %(default)g)")
    parser.add_argument("--workers", type=int, default=2,
                        help="worker processes of the local Dask cluster (default: %(default)s)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="run on the Dask cluster at this scheduler, e.g. "
                        "tcp://10.0.0.5:8786 (the files must be on a disk every worker sees)")
    parser.add_argument("--group-size", type=int, default=None, metavar="N",
                        help="neighbouring areas that share one cut of the extract, so the "
                        "whole file is read once per group (default: about the square root "
                        "of the number of areas from 9 areas on; 1: every area cuts its own)")
    parser.add_argument("--no-maps", action="store_true",
                        help="no map per area (faster; the overview map links to none)")
    parser.add_argument("--out", type=Path, default=Path("batch"),
                        help="output folder (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def cmd_batch(args: argparse.Namespace) -> int:
    """``sitefinder batch``: partitions on Dask, then a summary per area."""
    from sitefinder.batch import batch

    result = batch(
        args.areas, tiles_m=args.tiles, id_column=args.id_column, mode=args.mode,
        plots=args.plots, plots_crs=args.plots_crs, plot_id_column=args.plot_id_column,
        osm=args.osm, scenario=args.scenario,
        out=args.out, workers=args.workers, scheduler=args.scheduler,
        cell_size_m=args.cell_size, maps=not args.no_maps, group_size=args.group_size,
        log=print,
    )
    for line in result.summary_lines():
        print(line)
    print("Wrote " + ", ".join(str(p) for p in result.outputs.values()))
    return 0 if "failed" not in result.by_status else 1


def _bbox(text: str) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not four numbers west,south,east,north"
        ) from None
    return west, south, east, north


def cmd_run(args: argparse.Namespace) -> int:
    """``sitefinder run``, ``select`` and ``report``: one pipeline, different outputs."""
    from sitefinder.api import BUNDLED_OSM, BUNDLED_PLOTS
    from sitefinder.outfolder import StudyInputs, print_used_inputs, resolve_study
    from sitefinder.pipeline import run

    units = getattr(args, "units", None)
    sites = getattr(args, "sites", None)
    if args.command == "select" and units is None and sites is None:
        raise InputError(
            "nothing to select",
            where="sitefinder select",
            hint="Ask for a number of units (--units 12) or of sites (--sites 3)",
        )
    # One study per output folder: inputs not given come from --out's own study.
    inputs, source = resolve_study(
        args.out, plots=args.plots, osm=args.osm, scenario=args.scenario,
        plots_crs=args.plots_crs, id_column=args.id_column, layers=args.layers,
        defaults=StudyInputs.new(BUNDLED_PLOTS, BUNDLED_OSM), command=args.command,
    )
    if args.plots is None or args.osm is None:
        given = tuple(k for k in ("plots", "osm", "scenario") if getattr(args, k) is not None)
        print_used_inputs(inputs, source, given=given)
    result = run(
        plots=inputs.plots,
        osm=inputs.osm,
        scenario=inputs.scenario,
        out_dir=args.out,
        layers_dir=inputs.layers,
        cache_dir=None if args.no_cache else ".cache/sitefinder",
        plots_crs=inputs.plots_crs,
        id_column=inputs.id_column,
        units=units,
        sites=sites,
        offline=args.offline,
        public=args.public,
        report=args.command == "report",
        top_n=getattr(args, "top", 5),
        language=args.language,
    )
    _print_summary(result)
    return 0


def _print_summary(result) -> None:
    from sitefinder.capacity import units_text  # light, but keep `--help` free of imports

    ranked = result.ranked
    counts = ranked["status"].value_counts()
    scenario = result.study.scenario
    source = getattr(scenario, "_source_path", None) or "built in code"
    print(f"Scenario '{scenario.name}' ({source}).")
    print(f"Ranked {counts.get('ok', 0)} of {len(ranked)} plots ({result.study.plots_path}).")
    for status, n in counts.items():
        if status != "ok":
            print(f"  {n} {status} (see status_reason_en in ranked.csv)")
    top = ranked[ranked["status"] == "ok"].head(5)
    for _, row in top.iterrows():
        print(f"  #{int(row['rank'])} {row['plot_id']} {row.get('name', '')}: {row['score']:.1f}")
    selection = result.selection
    if selection is not None:
        gap = "" if selection.optimal else f", gap to bound {selection.gap:.1%}"
        print(
            f"Selected {len(selection.chosen)} sites, {selection.total_units} units "
            f"({selection.method}, {selection.status}{gap}):"
        )
        for _, row in selection.chosen.iterrows():
            district = f", {row['district']}" if isinstance(row.get("district"), str) else ""
            units = units_text(int(row["units"]), "en")
            print(f"  {row['plot_id']}: {units}, score {row['score']:.1f}{district}")
        for note in selection.notes_en:
            print(f"  Note: {note}")
    for warning in result.data_warnings:
        print(f"Map data: {warning.en}")
    print("Wrote " + ", ".join(str(p) for p in result.outputs.values()))
    timings = result.study.timings
    print("Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print sitefinder's own warnings as one line for people; others as Python does."""
    from sitefinder.config import ScenarioWarning
    from sitefinder.outfolder import DamagedFileWarning

    if issubclass(category, DamagedFileWarning | ScenarioWarning):
        print(f"sitefinder: warning: {message}", file=sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sitefinder`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    # Imported only now, so that `--help` and argument errors load nothing but argparse.
    from sitefinder.outfolder import DamagedFileWarning
    from sitefinder.progress import set_progress

    if getattr(args, "quiet", False):
        set_progress(False)
    # Scoped, so that a caller's own warning settings (main() called in process) come back.
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        # A damaged cache or ledger is repaired: a line for the user, never an error.
        warnings.simplefilter("default", DamagedFileWarning)
        try:
            if args.command == "download":
                from sitefinder.sources.osm import download_osm

                print(f"Wrote {download_osm(args.bbox, args.out)}")
                return 0
            if args.command == "screen":
                return cmd_screen(args)
            if args.command == "batch":
                return cmd_batch(args)
            return cmd_run(args)
        except SitefinderError as exc:
            print(f"sitefinder: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
