"""`import sitefinder` and `sitefinder --help` stay cheap; the one import line works.

No timing here (timings belong in benchmarks/): each check runs a fresh interpreter and
asserts which modules it loaded. The heavy libraries are imported where they are used,
so a module-level import of one of them in the package or the CLI fails these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

#: Libraries that take a tenth of a second or more to import.
HEAVY = ("scipy", "geopandas", "pandas", "folium", "rasterio", "matplotlib", "networkx",
         "shapely", "pyproj", "osmium", "pyogrio", "jinja2", "yaml", "pydantic")
#: What reading and validating a scenario may not load: every heavy library but the two
#: it needs (YAML and pydantic), and numpy, which only the measuring needs.
GEODATA = tuple(sorted({*HEAVY, "numpy"} - {"yaml", "pydantic"}))


def loaded_after(code: str) -> set[str]:
    """Top-level packages in ``sys.modules`` after running ``code`` in a new interpreter."""
    script = textwrap.dedent(code) + textwrap.dedent("""
        import json, sys
        print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_import_sitefinder_loads_no_heavy_library():
    loaded = loaded_after("import sitefinder")
    assert "sitefinder" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["select", "--help"], []])
def test_help_loads_no_heavy_library(argv):
    loaded = loaded_after(f"""
        import contextlib, io
        from sitefinder.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as out:
            try:
                main({argv!r})
            except SystemExit:
                pass
        assert "usage: sitefinder" in out.getvalue()
    """)
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_console_script_prints_help():
    done = subprocess.run([sys.executable, "-m", "sitefinder.cli", "--help"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.startswith("usage: sitefinder")
    assert "run" in done.stdout and "select" in done.stdout


def test_one_import_line_gives_the_common_tools():
    loaded = loaded_after("""
        from sitefinder import (Study, Scenario, compare, sensitivity, ahp_weights, run,
                                select, load_scenario, default_scenario)
        from sitefinder.ahp import ahp_weights as ahp
        from sitefinder.analysis import compare as cmp, sensitivity as sens
        from sitefinder.api import Study as S, select as sel
        from sitefinder.config import Scenario as Sc, load_scenario as ls
        from sitefinder.pipeline import run as r
        assert (Study, Scenario, compare, sensitivity, ahp_weights) == (S, Sc, cmp, sens, ahp)
        assert (run, select, load_scenario) == (r, sel, ls)
        assert load_scenario().name == default_scenario().name
    """)
    assert "geopandas" in loaded  # the names really were imported, on first use


@pytest.mark.parametrize("first", [
    "import sitefinder.sensitivity, sitefinder.select",
    "from sitefinder.select import select_sites; from sitefinder.sensitivity import monte_carlo",
    "import sitefinder.api, sitefinder.analysis",
    "pass",
])
def test_select_and_sensitivity_stay_functions_whatever_was_imported_first(first):
    """Python rebinds a package attribute to a submodule of the same name when the
    submodule is first imported; the public functions must win in every order."""
    loaded_after(f"""
        {first}
        import types
        import sitefinder
        from sitefinder import select, sensitivity
        from sitefinder.analysis import sensitivity as analysis_sensitivity
        from sitefinder.api import select as api_select
        assert sensitivity is analysis_sensitivity and select is api_select
        assert sitefinder.sensitivity is analysis_sensitivity
        assert sitefinder.select is api_select
        import sitefinder.select
        assert sitefinder.select is api_select
        # The modules themselves stay importable by name.
        from sitefinder.select import select_sites
        from sitefinder.sensitivity import monte_carlo
        import sys
        assert isinstance(sys.modules["sitefinder.select"], types.ModuleType)
    """)


def test_unknown_names_are_attribute_errors_and_listed_names_exist():
    loaded_after("""
        import sitefinder
        try:
            sitefinder.no_such_name
        except AttributeError as exc:
            assert "no_such_name" in str(exc)
        else:
            raise AssertionError("no AttributeError")
        for name in sitefinder.__all__:
            assert getattr(sitefinder, name) is not None, name
        assert set(sitefinder.__all__) <= set(dir(sitefinder))
    """)


#: A scenario with every block whose settings class lives in sitefinder.settings set, so
#: all of them are validated (the files need not exist to be validated).
FULL_SCENARIO = """
extends: default
name: every block
measure:
  noise: {raster: noise.tif, statistic: max}
  population: {raster: pop.tif, radius_m: 400}
  slope: {dem: dem.tif, statistic: percentile, q: 90}
  transit_frequency:
    feeds: [{path: feed.zip, service_date: 2025-03-03}]
    window_start: "07:00"
    window_end: "09:00"
  rasters:
    green: {path: green.tif, statistic: share_above, threshold: 0.5}
capacity: {max_units_per_site: 3}
clustering: {min_spacing_m: 400, max_sites_per_district: 1}
"""


@pytest.mark.parametrize("code", [
    "import sitefinder.config",
    "from sitefinder.config import Scenario, default_scenario; default_scenario()",
    "import sitefinder.settings",
])
def test_reading_the_scenario_loads_no_geodata_library(code):
    loaded = loaded_after(code)
    assert "pydantic" in loaded  # the check can see an imported library
    assert loaded.isdisjoint(GEODATA), sorted(loaded & set(GEODATA))


def test_a_scenario_with_every_block_validates_without_geodata(tmp_path):
    path = tmp_path / "every.yaml"
    path.write_text(FULL_SCENARIO, encoding="utf-8")
    loaded = loaded_after(f"""
        from sitefinder.config import load_scenario
        s = load_scenario({str(path)!r})
        m = s.measure
        assert (m.noise.statistic, m.population.radius_m, m.slope.q) == ("max", 400, 90)
        assert m.transit_frequency.feeds[0].service_date.isoformat() == "2025-03-03"
        assert m.rasters["green"].threshold == 0.5
        assert (s.capacity.max_units_per_site, s.clustering.min_spacing_m) == (3, 400)
    """)
    assert loaded.isdisjoint(GEODATA), sorted(loaded & set(GEODATA))


def test_a_wrong_setting_is_reported_before_any_geodata_library_loads(tmp_path):
    """The point of the light settings: a typo is answered at once, every problem listed."""
    path = tmp_path / "typo.yaml"
    path.write_text("extends: default\ncapacity: {max_units_per_site: 9}\n"
                    "clustering: {min_spacng_m: 400}\nmeasure:\n  slope: {statistic: mean}\n",
                    encoding="utf-8")
    loaded = loaded_after(f"""
        from sitefinder.config import load_scenario
        from sitefinder.errors import ScenarioError
        try:
            load_scenario({str(path)!r})
        except ScenarioError as exc:
            text = str(exc)
        else:
            raise AssertionError("the scenario was accepted")
        assert "capacity.max_units_per_site" in text and "at most 6 units" in text, text
        assert "clustering.min_spacng_m" in text and "unknown key" in text, text
        assert "measure.slope.dem" in text, text
    """)
    assert loaded.isdisjoint(GEODATA), sorted(loaded & set(GEODATA))


#: Where each settings class was always imported from. The working modules must hand out
#: the very class the scenario validates (pydantic refuses an instance of a look-alike).
OLD_HOMES = {
    "ClusteringSettings": "sitefinder.select",
    "TransitFrequencySettings": "sitefinder.sources.gtfs",
    "GtfsFeedSource": "sitefinder.sources.gtfs",
    "CapacitySettings": "sitefinder.capacity",
    "NoiseSettings": "sitefinder.noise",
    "PopulationSettings": "sitefinder.population",
    "RasterCriterionSource": "sitefinder.sources.raster",
    "SlopeSettings": "sitefinder.terrain",
}


@pytest.mark.parametrize(("name", "module"), OLD_HOMES.items())
def test_old_imports_give_the_scenario_s_own_settings_class(name, module):
    loaded_after(f"""
        import importlib
        import sitefinder.settings
        old = getattr(importlib.import_module({module!r}), {name!r})
        assert old is getattr(sitefinder.settings, {name!r}), "a second copy"
    """)


def test_the_limits_the_settings_check_are_the_limits_the_work_uses():
    """Until every old module re-exports, its own copy of a limit must not drift."""
    loaded_after("""
        import sitefinder.capacity as capacity, sitefinder.noise as noise
        import sitefinder.settings as settings
        assert capacity.HARD_MAX_UNITS_PER_SITE == settings.HARD_MAX_UNITS_PER_SITE
        for name in ("ROAD_YELLOW_DB", "ROAD_RED_DB", "RAIL_YELLOW_DB", "RAIL_RED_DB"):
            assert getattr(noise, name) == getattr(settings, name), name
    """)
