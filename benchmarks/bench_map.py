"""Benchmark: how fast a 5,000-plot map opens in headless chromium, and how big it is.

Run: ``.venv/bin/python benchmarks/bench_map.py [--plots 5000] [--repeat 3]``

Plots are synthetic but plausible (15–70 m rectangles over ~12 × 12 km of Oslo, every
column of the ranked-plots contract, ~10 % not ranked). Both the online file (Leaflet from
the CDN, no tiles needed for the load event in this sandbox) and the offline file (all
assets embedded) are timed from navigation start to the load event, plus the time until
the plot layers exist (our script has run).

Target (README, "Benchmarks"): the median load event of the offline map is under 3 s.
Exits with status 1 when the median is over the target or the map did not draw every
ranked plot, and 2 when chromium/chromedriver are missing (the target cannot be checked).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sitefinder.maps import write_map  # noqa: E402
from tests.map_fixtures import ranked_fixture  # noqa: E402

#: README target: load event of the 5,000-plot offline map, median of the runs, seconds.
TARGET_LOAD_S = 3.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plots", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--target", type=float, default=TARGET_LOAD_S,
                    help="fail when the median load event takes longer (seconds)")
    args = ap.parse_args()

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from tests.test_browser import CHROMEDRIVER, CHROMIUM, chromium_options

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        print(f"cannot check the map target: needs {CHROMIUM} and {CHROMEDRIVER}"
              " (apt-get install -y chromium chromium-driver)")
        return 2

    out = Path(tempfile.mkdtemp(prefix="sitefinder-bench-"))
    ranked = ranked_fixture(args.plots, spread_m=6000.0, excluded_share=0.1)
    t0 = time.perf_counter()
    path = write_map(ranked, out / "map_offline.html", offline=True)
    t_write = time.perf_counter() - t0
    size = path.stat().st_size
    n_not_ok = int((ranked["status"] != "ok").sum())
    n_ok = len(ranked) - n_not_ok

    profile = tempfile.mkdtemp(prefix="sitefinder-chromium-")
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=chromium_options(profile))
    loads, ready = [], []
    try:
        for _ in range(args.repeat):
            drv.get("about:blank")
            drv.get(path.as_uri())
            timing = drv.execute_script(
                "var t = performance.timing; return [t.loadEventEnd - t.navigationStart,"
                " sitefinder.layers.plots.getLayers().length]"
            )
            loads.append(timing[0])
            ready.append(timing[1])
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)

    print(f"plots: {args.plots} ({n_not_ok} not ranked, drawn hatched with SVG)")
    print(f"write_map (offline): {t_write:.2f} s")
    print(f"HTML size: {size / 1e6:.2f} MB ({size / args.plots:.0f} bytes/plot, incl. assets)")
    median_s = statistics.median(loads) / 1000
    over = median_s > args.target
    print(f"load event (ms), {args.repeat} runs: {loads}; median {median_s * 1000:.0f}"
          f"  target < {args.target:g} s{'  OVER' if over else ''}")
    drawn = all(n == n_ok for n in ready)
    print(f"plot features on the map: {ready} (ranked plots: {n_ok})"
          f"{'' if drawn else '  MISSING PLOTS'}")
    shutil.rmtree(out, ignore_errors=True)
    if over or not drawn:
        print("Over target: map load event" if over else "Not every ranked plot was drawn")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
