"""The ``sitefinder`` command. Thin: parses arguments, calls the API, prints results.

Bad input ends with exit code 2 and one paragraph naming the file, row or field and what
to do — never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from sitefinder import __version__
from sitefinder.errors import InputError, SitefinderError
from sitefinder.progress import set_progress

EXIT_BAD_INPUT = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, default=None,
        help="scenario YAML (default: the shipped default scenario; data/oslo-demo.yaml "
        "when running on the bundled demo data)",
    )
    parser.add_argument(
        "--plots", type=Path, default=Path("data/plots.gpkg"),
        help="candidate plots: GeoPackage, GeoJSON, Shapefile or CSV (default: %(default)s)",
    )
    parser.add_argument(
        "--osm", type=Path, default=Path("data/oslo-center.osm.pbf"),
        help="OpenStreetMap extract, .osm.pbf or .osm (default: %(default)s)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("output"), help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--layers", type=Path, default=Path("layers"),
        help="folder of thematic layer GeoPackages, editable in QGIS (default: %(default)s)",
    )
    parser.add_argument(
        "--plots-crs", default=None,
        help="CRS of a plot file that declares none, e.g. EPSG:25833",
    )
    parser.add_argument(
        "--id-column", default="plot_id", help="plot id column (default: %(default)s)"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="measure again even if a cached table exists"
    )
    parser.add_argument(
        "--offline", action="store_true",
        help="make map.html itself self-contained: no CDN, no tile server, basemap from the "
        "OSM extract (without this flag, map.html uses online tiles and a self-contained "
        "map_offline.html is written beside it)",
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
    )
    parser.add_argument("--version", action="version", version=f"sitefinder {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run_parser = sub.add_parser(
        "run",
        help="rank the plots; write ranked.csv, ranked.gpkg, map.html, map_offline.html, "
        "manifest.json",
        description="Rank the candidate plots. With no options, runs on the bundled Oslo "
        "demo data and writes to output/.",
    )
    _add_common(run_parser)
    select_parser = sub.add_parser(
        "select",
        help="choose a set of sites under the clustering limits; writes selected.csv and "
        "selected.gpkg and draws them on the maps",
        description="Rank the plots, then choose the sites that deliver exactly the requested "
        "number of units (or sites) with the best total score, under the scenario's limits "
        "(units per site, spacing, sites per district, concentration). Solved exactly as a "
        "mixed-integer programme.",
    )
    _add_common(select_parser)
    _add_request(select_parser)
    report_parser = sub.add_parser(
        "report",
        help="write the printable report (report.html, report.pdf) as well as the maps",
        description="Write the meeting report: overview map, ranked table, one page per top "
        "candidate (or selected site, with --units/--sites) and a method page.",
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
    return parser


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
    from sitefinder.api import run

    units = getattr(args, "units", None)
    sites = getattr(args, "sites", None)
    if args.command == "select" and units is None and sites is None:
        raise InputError(
            "nothing to select",
            where="sitefinder select",
            hint="Ask for a number of units (--units 12) or of sites (--sites 3)",
        )
    result = run(
        plots=args.plots,
        osm=args.osm,
        scenario=args.scenario,
        out_dir=args.out,
        layers_dir=args.layers,
        cache_dir=None if args.no_cache else ".cache/sitefinder",
        plots_crs=args.plots_crs,
        id_column=args.id_column,
        units=units,
        sites=sites,
        offline=args.offline,
        public=args.public,
        report=args.command == "report",
        top_n=getattr(args, "top", 5),
    )
    _print_summary(result)
    return 0


def _print_summary(result) -> None:
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
            print(f"  {row['plot_id']}: {row['units']} units, score {row['score']:.1f}{district}")
    print("Wrote " + ", ".join(str(p) for p in result.outputs.values()))
    timings = result.study.timings
    print("Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sitefinder`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "quiet", False):
        set_progress(False)
    try:
        if args.command == "download":
            from sitefinder.sources.osm import download_osm

            print(f"Wrote {download_osm(args.bbox, args.out)}")
            return 0
        return cmd_run(args)
    except SitefinderError as exc:
        print(f"sitefinder: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
