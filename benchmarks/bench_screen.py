"""Benchmark: `sitefinder screen` of the whole bundled Oslo extract at 50 m cells.

Run from the repository root (``make bench`` runs every benchmark)::

    .venv/bin/python benchmarks/bench_screen.py

Screens ``data/oslo-center.osm.pbf`` (about 3.4 × 4.5 km of central Oslo) with the demo
scenario, cold (fresh layers folder, no cache), writing every output, in a child process
so that its peak memory (maximum resident set size) is its own. Prints the wall time per
step, the peak memory and the number of cells considered, buildable and ranked.

Issue 12 sets no target for screening, only asks for the figures; the benchmark fails
only when the screening fails or needs more than :data:`MAX_PEAK_MB` (the issue's memory
ceiling for measuring).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OSM = ROOT / "data" / "oslo-center.osm.pbf"
CELL_M = 50
MAX_PEAK_MB = 1536

_CHILD = """
import json, sys, time
from sitefinder.progress import set_progress
from sitefinder.screen import screen
set_progress(False)
start = time.perf_counter()
result = screen(sys.argv[1], cell_size_m=float(sys.argv[2]), out=sys.argv[3],
                layers_dir=sys.argv[4])
wall = time.perf_counter() - start
print(json.dumps({"wall_s": wall, "timings": result.timings, "counts": result.counts,
                  "areas": len(result.areas)}, default=int))
"""


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(OSM), str(CELL_M), str(tmp / "out"),
             str(tmp / "layers")],
            capture_output=True, text=True, check=False, cwd=tmp,
        )
        outer = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb = usage.ru_maxrss / 1024
        cpu = usage.ru_utime + usage.ru_stime
        if proc.returncode != 0:
            print(proc.stderr)
            return 1
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
    counts = figures["counts"]
    print(f"sitefinder screen, {OSM.name}, {CELL_M} m cells, cold")
    for step, seconds in figures["timings"].items():
        print(f"   {step:<28} {seconds:7.2f} s")
    print(f"   {'wall clock (screen)':<28} {figures['wall_s']:7.2f} s")
    print(f"   {'wall clock (process)':<28} {outer:7.2f} s  (incl. Python start and imports)")
    print(f"   {'CPU time (process)':<28} {cpu:7.2f} s  (wall above includes waiting for "
          "a shared CPU)")
    print(f"   {'peak memory (max RSS)':<28} {peak_mb:7.0f} MB  (ceiling {MAX_PEAK_MB} MB)")
    print(f"   cells: {counts['considered']:,} considered, {counts['buildable']:,} buildable, "
          f"{counts['ranked']:,} ranked; {figures['areas']} best areas "
          f"({counts['best_cells']:,} cells)")
    print(f"   by status: {counts['by_status']}")
    return 0 if peak_mb <= MAX_PEAK_MB else 1


if __name__ == "__main__":
    sys.exit(main())
