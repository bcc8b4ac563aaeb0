"""sitefinder: rank candidate plots for småhus the way the research says they should be judged.

The public API for notebooks::

    from sitefinder import Study, run, default_scenario, load_scenario

    result = run()                       # bundled demo data → output/
    study = Study("data/plots.gpkg", "data/oslo-center.osm.pbf")
    ranked = study.score(default_scenario().with_weights(transit=6))
"""

__version__ = "0.1.0"

from sitefinder.api import RunResult, Study, run  # noqa: E402
from sitefinder.config import Scenario, default_scenario, load_scenario  # noqa: E402
from sitefinder.errors import InputError, ScenarioError, SitefinderError  # noqa: E402

__all__ = [
    "InputError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SitefinderError",
    "Study",
    "__version__",
    "default_scenario",
    "load_scenario",
    "run",
]
