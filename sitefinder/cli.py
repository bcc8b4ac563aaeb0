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
from sitefinder.errors import SitefinderError
from sitefinder.progress import set_progress

EXIT_BAD_INPUT = 2


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario", type=Path, default=None,
        help="scenario YAML (default: the shipped default scenario)",
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
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


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
        help="rank the plots and write ranked.csv, ranked.gpkg, map.html, manifest.json",
        description="Rank the candidate plots. With no options, runs on the bundled Oslo "
        "demo data and writes to output/.",
    )
    _add_common(run_parser)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    """``sitefinder run``."""
    from sitefinder.api import run

    result = run(
        plots=args.plots,
        osm=args.osm,
        scenario=args.scenario,
        out_dir=args.out,
        layers_dir=args.layers,
        cache_dir=None if args.no_cache else ".cache/sitefinder",
        plots_crs=args.plots_crs,
        id_column=args.id_column,
    )
    ranked = result.ranked
    counts = ranked["status"].value_counts()
    print(f"Ranked {counts.get('ok', 0)} of {len(ranked)} plots ({args.plots}).")
    for status, n in counts.items():
        if status != "ok":
            print(f"  {n} {status} (see status_reason_en in ranked.csv)")
    top = ranked[ranked["status"] == "ok"].head(5)
    for _, row in top.iterrows():
        print(f"  #{int(row['rank'])} {row['plot_id']} {row.get('name', '')}: {row['score']:.1f}")
    print("Wrote " + ", ".join(str(p) for p in result.outputs.values()))
    timings = result.study.timings
    print("Time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sitefinder`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "quiet", False):
        set_progress(False)
    commands = {"run": cmd_run}
    try:
        return commands[args.command](args)
    except SitefinderError as exc:
        print(f"sitefinder: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
