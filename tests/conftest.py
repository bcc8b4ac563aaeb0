"""Shared fixtures: the real bundled OSM extract and demo plots, read once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sitefinder.progress import set_progress

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TEST_DATA = ROOT / "tests" / "data"
OSM_PBF = DATA / "oslo-center.osm.pbf"
DEMO_PLOTS = DATA / "plots.gpkg"

os.environ.setdefault("SITEFINDER_QUIET", "1")
set_progress(False)


@pytest.fixture(scope="session")
def osm_data():
    """The bundled central-Oslo OSM extract (a real bbox cut), read once."""
    from sitefinder.sources.osm import read_osm

    return read_osm(OSM_PBF)


DEMO_SCENARIO = DATA / "oslo-demo.yaml"


@pytest.fixture(scope="session")
def scenario():
    """The demo scenario: the default plus the bundled Oslo population grid and districts."""
    from sitefinder.config import load_scenario

    return load_scenario(DEMO_SCENARIO)


@pytest.fixture(scope="session")
def demo_study(tmp_path_factory, scenario):
    """A Study of the bundled demo plots on the bundled extract, measured once."""
    from sitefinder.api import Study

    layers = tmp_path_factory.mktemp("layers")
    study = Study(DEMO_PLOTS, OSM_PBF, scenario, layers_dir=layers, cache_dir=None)
    _ = study.metrics
    return study


@pytest.fixture(scope="session")
def demo_ranked(demo_study):
    return demo_study.score()
