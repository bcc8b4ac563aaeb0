"""Mutation testing: does the test suite notice deliberate bugs in the core modules?

Run from the repository root (``make mutate``; not part of ``make test``)::

    .venv/bin/python scripts/mutate.py                  # every mutant, about 15-30 min
    .venv/bin/python scripts/mutate.py --module score   # one module (repeatable)
    .venv/bin/python scripts/mutate.py --list           # what would be run

Each mutant is one small, named source edit (an exact piece of text and its replacement)
that plants a bug a reviewer could plausibly miss: a filter left out, a threshold moved,
two layers swapped, a rule ignored, an escape dropped. For every module the script

1. copies the project (source, tests, data; no .git, .venv, caches or outputs) to a
   temporary folder, so the working tree is never edited and other work is not disturbed;
2. runs the module's test files once unchanged: they must pass, or the module is
   reported as "baseline failing" and its mutants are not run;
3. applies each mutant alone, runs the same test files (``pytest -x``: the first failure
   is enough) and restores the file.

A mutant is **killed** when the tests fail (or time out) and **survives** when they pass:
a survivor is a bug the suite would let through. The report ends with killed/total per
module and the list of survivors. Exit status: 0 all killed, 1 a mutant survived, 2 a
mutant no longer matches the source (the code moved: update its ``find`` text) or a
baseline failed.

A mutant's text must occur exactly once in its file, so a mutant never lands somewhere
unintended. Python's bytecode cache is off in the copy, so every run imports the edited
source.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Copied into the scratch project (everything else the tests need lives in these).
COPY = ("sitefinder", "tests", "data", "docs", "scripts", "pyproject.toml")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")


@dataclass(frozen=True)
class Mutant:
    """One deliberate bug: replace ``find`` (exactly once in ``path``) by ``replace``."""

    module: str
    name: str
    path: str
    find: str
    replace: str
    what: str
    also: tuple[tuple[str, str], ...] = ()  # further (find, replace) edits of the same bug

    def edits(self) -> tuple[tuple[str, str], ...]:
        return ((self.find, self.replace), *self.also)


#: The test files run for each module's mutants: the tests meant to guard that module.
TESTS: dict[str, tuple[str, ...]] = {
    "network": ("tests/test_network_access.py", "tests/test_network.py"),
    "measure": ("tests/test_surroundings.py", "tests/test_score.py"),
    "score": ("tests/test_score.py", "tests/test_surroundings.py"),
    "select": ("tests/test_select.py",),
    "api": ("tests/test_cache_key.py", "tests/test_pipeline.py", "tests/test_inputs.py"),
    "maps": ("tests/test_maps.py", "tests/test_browser.py"),
    "walking": ("tests/test_network_counts.py", "tests/test_access_points.py",
                "tests/test_network_distances.py"),
}

MUTANTS: tuple[Mutant, ...] = (
    # --- network.walkable_ways: which OSM ways may be walked on
    Mutant("network", "access-no-ignored", "sitefinder/network.py",
           "    ok &= ~access.isin(_NO_FOOT) | foot_ok\n", "",
           "access=no/private no longer closes a way"),
    Mutant("network", "foot-no-ignored", "sitefinder/network.py",
           "    ok &= ~foot.isin(_NO_FOOT)\n", "",
           "foot=no/private no longer closes a way"),
    Mutant("network", "not-built-walkable", "sitefinder/network.py",
           "    ok &= ~highway.isin(_NOT_BUILT)\n", "",
           "highway=construction/proposed ways are walked on"),
    Mutant("network", "foot-yes-no-exception", "sitefinder/network.py",
           "    ok &= ~access.isin(_NO_FOOT) | foot_ok\n",
           "    ok &= ~access.isin(_NO_FOOT)\n",
           "foot=yes no longer opens a way with access=no"),
    Mutant("network", "foot-yes-trunk-closed", "sitefinder/network.py",
           "ok = highway.isin(settings.highway_types) | (highway.notna() & foot_ok)",
           "ok = highway.isin(settings.highway_types)",
           "a trunk road with foot=yes is not walked on"),
    # --- walking: plot outlines sampled, snapped, and features counted within N minutes
    Mutant("walking", "count-ignores-plot-leg", "sitefinder/network_counts.py",
           "                if d + tgt_leg[k] > limit:\n", "                if d > limit:\n",
           "a plot counts a feature whose walk is only within reach without the plot's leg"),
    Mutant("walking", "plot-side-keeps-longest-join", "sitefinder/network_counts.py",
           "                    elif d < best[u]:\n", "                    elif d > best[u]:\n",
           "a plot's longest join to a junction is kept instead of its shortest"),
    Mutant("walking", "outline-points-rounded-otherwise", "sitefinder/network.py",
           "                    f = (j * part) / length\n", "                    f = j / parts\n",
           "outline points computed another way than GEOS (differ in the last bit)"),
    Mutant("walking", "snap-drops-node-at-max-dist", "sitefinder/network.py",
           "            dist[j] = np.sqrt(dist[j])  # as the tree computes it\n",
           "            dist[j] = np.sqrt(dist[j])  # as the tree computes it\n"
           "            if not dist[j] < max_dist:\n"
           "                best[j], dist[j] = n, np.inf\n",
           "the grid search drops a node the KD-tree keeps at exactly max_dist"),
    # --- measure.buffer_metrics: straight-line metrics of the surroundings
    Mutant("measure", "dwelling-residential-swapped", "sitefinder/measure.py",
           "dwellings.nearest if layer == \"dwellings\" else proximity(\n"
           "            geoms, layers[layer]",
           "proximity(\n            geoms, layers[{'dwellings': 'residential_areas', "
           "'residential_areas': 'dwellings'}.get(layer, layer)]",
           "nearest dwelling and nearest residential area measured from each other's layer"),
    Mutant("measure", "inside-industrial-0.99", "sitefinder/measure.py",
           "share_inside(geoms, industrial, usable) >= 0.5",
           "share_inside(geoms, industrial, usable) >= 0.99",
           "inside_industrial needs 99 % of the plot in industrial land, not half"),
    Mutant("measure", "dwelling-count-radius-halved", "sitefinder/measure.py",
           'out[f"dwellings_within_{radius}m"] = dwellings.counts[radius]',
           'out[f"dwellings_within_{radius}m"] = proximity(geoms, layers["dwellings"]'
           ".geometry.to_numpy(), usable, (radius / 2,), nearest=False).counts[radius / 2]",
           "dwellings counted within half the radius"),
    Mutant("measure", "nightlife-not-weighted", "sitefinder/measure.py",
           "settings.nightlife_weight, 1.0", "1.0, 1.0",
           "bars and pubs count like any shop in the exposure index"),
    # --- score: value functions, exclusions, rank
    Mutant("score", "exclude-when-unacceptable-ignored", "sitefinder/score.py",
           "if c.exclude_when_unacceptable and name not in dropped:",
           "if False and c.exclude_when_unacceptable and name not in dropped:",
           "exclude_when_unacceptable is ignored (drug scene < 300 m, > 6 units stay ranked)"),
    Mutant("score", "exclusions-ignored", "sitefinder/score.py",
           "for exclusion in scenario.exclusions:", "for exclusion in ():",
           "the scenario's exclusions are ignored"),
    Mutant("score", "window-upper-edge", "sitefinder/score.py",
           "high = linear_value(x, ideal_to, unacceptable_above)",
           "high = linear_value(x, ideal_from, unacceptable_above)",
           "window value: the ideal range ends at ideal_from, not ideal_to"),
    Mutant("score", "window-lower-edge", "sitefinder/score.py",
           "low = linear_value(x, ideal_from, unacceptable_below)",
           "low = linear_value(x, ideal_from, unacceptable_below) * 0 + 1",
           "window value: being too close is never penalised"),
    Mutant("score", "missing-value-ignored", "sitefinder/score.py",
           "values[name] = np.where(np.isnan(numbers), c.missing_value, value)",
           "values[name] = value",
           "missing_value ignored: nothing nearby counts as 0 for 'away from' criteria"),
    Mutant("score", "tie-break-reversed", "sitefinder/score.py",
           'sort_values(["score", "id"], ascending=[False, True])',
           'sort_values(["score", "id"], ascending=[False, False])',
           "equal scores ranked by descending plot id"),
    # --- select: the clustering rules of the site selection
    Mutant("select", "spacing-dropped", "sitefinder/select.py",
           "conflicts, cliques = _pairs_within(xy, lim.min_spacing, strict=True), []",
           "conflicts, cliques = _pairs_within(xy, 0.0, strict=True), []",
           "minimum spacing between chosen sites dropped",
           also=(("_clique_rows(xy, lim.min_spacing)", "_clique_rows(xy, 0.0)"),
                 ("_pairs_within(mdl.xy[pos], mdl.limits.min_spacing, strict=True)",
                  "_pairs_within(mdl.xy[pos], 0.0, strict=True)"))),
    Mutant("select", "district-limit-dropped", "sitefinder/select.py",
           "_district_groups(c.district[elig], lim.max_per_district)", "[]",
           "max_sites_per_district dropped"),
    Mutant("select", "concentration-dropped", "sitefinder/select.py",
           "    _concentration_rows(mdl, rows)\n", "",
           "max_units_near (units within 500 m) not enforced by the MILP"),
    # --- api: the metrics cache key
    Mutant("api", "cache-key-ignores-measurement", "sitefinder/api.py",
           '            "measure": self.scenario.measurement_key(),\n', "",
           "cached metrics reused after the measurement settings changed"),
    Mutant("api", "cache-key-ignores-osm", "sitefinder/api.py",
           '            "osm": osm_sha,\n', "",
           "cached metrics reused after the OSM file changed"),
    Mutant("api", "cache-key-ignores-plots", "sitefinder/api.py",
           '            "plots": file_sha256(self.plots_path),\n', "",
           "cached metrics reused after the plot file changed",
           also=(('            "plots_read": _frame_digest(self.plots),\n', ""),)),
    # --- maps: nothing from the data or the scenario becomes markup
    Mutant("maps", "layer-name-not-escaped", "sitefinder/map_elements.py",
           "super().__init__(name=html.escape(name), overlay=True, show=show)",
           "super().__init__(name=name, overlay=True, show=show)",
           "layer names reach Leaflet's layer control unescaped"),
    Mutant("maps", "title-not-escaped", "sitefinder/maps.py",
           'Raw(f"<title>{html.escape(title)}</title>")', 'Raw(f"<title>{title}</title>")',
           "the page title is written as HTML"),
    Mutant("maps", "json-not-script-safe", "sitefinder/map_elements.py",
           '        text.replace("<", "\\\\u003c")\n', "        text\n",
           "'<' in map data is written as is inside <script> (a name can end the script)"),
    Mutant("maps", "popup-innerhtml", "sitefinder/assets/sitefinder.js",
           "e.textContent = String(text);", "e.innerHTML = String(text);",
           "popups and tooltips insert data as HTML"),
)


def _copy_project(dest: Path) -> None:
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORE)
        elif src.exists():
            shutil.copy2(src, dest / name)
    for name in ("layers", "output"):
        (dest / name).mkdir(exist_ok=True)


def _env(copy: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(copy) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["SITEFINDER_QUIET"] = "1"
    return env


def _check_import(copy: Path) -> None:
    """Refuse to run when the tests would import the working tree instead of the copy."""
    out = subprocess.run(
        [sys.executable, "-c", "import sitefinder; print(sitefinder.__file__)"],
        cwd=copy, env=_env(copy), capture_output=True, text=True, check=True,
    ).stdout.strip()
    if not Path(out).resolve().is_relative_to(copy.resolve()):
        raise SystemExit(f"mutate: the tests would import {out}, not the scratch copy")


def _pytest(copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """Run ``tests`` in the copy: ("pass" | "fail" | "timeout" | "error", seconds, tail)."""
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-o", "addopts=", *tests]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=copy, env=_env(copy), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # pytest and any browser it started
        proc.communicate()
        return "timeout", time.perf_counter() - start, ""
    seconds = time.perf_counter() - start
    tail = "\n".join(out.strip().splitlines()[-3:])
    outcome = {0: "pass", 1: "fail"}.get(proc.returncode, "error")
    return outcome, seconds, tail


def _failed_test(tail: str) -> str:
    for line in tail.splitlines():
        if line.startswith(("FAILED", "ERROR")):
            return line.split(" - ")[0]
    return tail.splitlines()[-1] if tail else ""


def run(modules: list[str], keep: bool) -> tuple[int, dict]:
    copy = Path(tempfile.mkdtemp(prefix="sitefinder-mutate-"))
    report: dict = {"modules": {}, "survivors": [], "stale": []}
    status = 0
    try:
        _copy_project(copy)
        _check_import(copy)
        print(f"scratch copy: {copy}\n", flush=True)
        for module in modules:
            tests = TESTS[module]
            mutants = [m for m in MUTANTS if m.module == module]
            print(f"== {module}: {len(mutants)} mutants; tests: {' '.join(tests)}", flush=True)
            outcome, base_s, tail = _pytest(copy, tests, timeout=1800)
            entry = {"tests": list(tests), "baseline_s": round(base_s, 1), "mutants": []}
            report["modules"][module] = entry
            if outcome != "pass":
                print(f"   baseline {outcome} ({base_s:.0f} s): not mutated\n{tail}\n",
                      flush=True)
                entry["baseline"] = outcome
                status = max(status, 2)
                continue
            print(f"   baseline passes in {base_s:.0f} s", flush=True)
            for m in mutants:
                target = copy / m.path
                original = target.read_text(encoding="utf-8")
                counts = [original.count(find) for find, _ in m.edits()]
                if counts != [1] * len(counts):
                    print(f"   STALE     {m.name}: text found {counts} times", flush=True)
                    report["stale"].append(f"{module}/{m.name}")
                    status = max(status, 2)
                    continue
                mutated = original
                for find, replace in m.edits():
                    mutated = mutated.replace(find, replace)
                target.write_text(mutated, encoding="utf-8")
                try:
                    outcome, secs, tail = _pytest(copy, tests, timeout=max(120, 4 * base_s))
                finally:
                    target.write_text(original, encoding="utf-8")
                verdict = {"fail": "killed", "timeout": "killed", "pass": "SURVIVED"}.get(
                    outcome, "error")
                detail = (_failed_test(tail) if outcome == "fail" else
                          "timed out" if outcome == "timeout" else tail.replace("\n", " | "))
                print(f"   {verdict:<9} {m.name} ({secs:.0f} s): {m.what}"
                      + (f"\n             by {detail}" if verdict != "SURVIVED" else ""),
                      flush=True)
                entry["mutants"].append({"name": m.name, "what": m.what, "result": verdict,
                                         "seconds": round(secs, 1), "detail": detail})
                if verdict == "SURVIVED":
                    report["survivors"].append(f"{module}/{m.name}: {m.what}")
                    status = max(status, 1)
                elif verdict == "error":
                    status = max(status, 2)
            print(flush=True)
    finally:
        if keep:
            print(f"kept the scratch copy: {copy}")
        else:
            shutil.rmtree(copy, ignore_errors=True)
    return status, report


def summary(report: dict) -> str:
    lines = ["module     killed/total  survivors"]
    for module, entry in report["modules"].items():
        if "baseline" in entry:
            lines.append(f"{module:<10} baseline {entry['baseline']}")
            continue
        results = [m["result"] for m in entry["mutants"]]
        killed = results.count("killed")
        alive = [m["name"] for m in entry["mutants"] if m["result"] == "SURVIVED"]
        lines.append(f"{module:<10} {killed:>3}/{len(results):<9} {', '.join(alive) or '-'}")
    if report["stale"]:
        lines.append("stale mutants (update their text): " + ", ".join(report["stale"]))
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", action="append", choices=sorted(TESTS),
                    help="only this module (repeat for more); default: all")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--json", type=Path, help="also write the results to this JSON file")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copy")
    args = ap.parse_args()
    modules = args.module or list(TESTS)
    if args.list:
        for m in MUTANTS:
            if m.module in modules:
                print(f"{m.module:<8} {m.name:<34} {m.what}")
        return 0
    start = time.perf_counter()
    status, report = run(modules, args.keep)
    report["minutes"] = round((time.perf_counter() - start) / 60, 1)
    print(summary(report))
    print(f"\n{report['minutes']} min")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return status


if __name__ == "__main__":
    sys.exit(main())
