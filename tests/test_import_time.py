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
