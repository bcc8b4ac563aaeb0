"""sitefinder: rank candidate plots for småhus the way the research says they should be judged.

The common work needs one import line::

    from sitefinder import Study, Scenario, compare, sensitivity, ahp_weights

    study = Study("data/plots.gpkg", "data/oslo-center.osm.pbf")
    ranked = study.score(study.scenario.with_weights(transit=6))

Exported names
--------------
Study
    A measured set of plots (:mod:`sitefinder.api`).
run, RunResult
    Rank the plots and write every output, and what a run gives back
    (:mod:`sitefinder.pipeline`).
select
    Choose sites under the clustering limits (:mod:`sitefinder.api`).
Scenario, default_scenario, load_scenario
    The criteria, weights and limits (:mod:`sitefinder.config`).
compare, sensitivity, sweep
    Compare scenarios, Monte Carlo weight perturbation, one-at-a-time weight sweeps
    (:mod:`sitefinder.analysis`).
ahp_weights
    Criterion weights from a pairwise comparison matrix (:mod:`sitefinder.ahp`).
screen, ScreenResult
    Screen an extract or area for land where a house could stand (:mod:`sitefinder.screen`).
batch, BatchResult
    Run or screen many areas as partitions on Dask (:mod:`sitefinder.batch`).
InputError, ScenarioError, SitefinderError
    The errors sitefinder raises for bad input.

Importing the package is cheap: each name is imported from its module the first time it
is used, so ``import sitefinder`` and ``sitefinder --help`` load no geodata libraries.

``sitefinder.select``, ``sitefinder.sensitivity``, ``sitefinder.screen`` and
``sitefinder.batch`` are always the functions above, even
though modules of the same names exist: Python would otherwise rebind the package
attribute to the module as soon as anything imported it. The modules stay importable with
``from sitefinder.select import select_sites`` or ``from sitefinder.sensitivity import
monte_carlo``.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from sitefinder.errors import InputError, ScenarioError, SitefinderError

__version__ = "0.1.0"

#: Public name → module that defines it; imported on first use.
_LAZY: dict[str, str] = {
    "Study": "sitefinder.api",
    "RunResult": "sitefinder.pipeline",
    "run": "sitefinder.pipeline",
    "select": "sitefinder.api",
    "Scenario": "sitefinder.config",
    "default_scenario": "sitefinder.config",
    "load_scenario": "sitefinder.config",
    "compare": "sitefinder.analysis",
    "sensitivity": "sitefinder.analysis",
    "sweep": "sitefinder.analysis",
    "ahp_weights": "sitefinder.ahp",
    "screen": "sitefinder.screen",
    "ScreenResult": "sitefinder.screen",
    "batch": "sitefinder.batch",
    "BatchResult": "sitefinder.batch",
}

#: Public functions that share their name with a submodule of this package.
_SHADOWED = ("select", "sensitivity", "screen", "batch")

__all__ = [
    "BatchResult",
    "InputError",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "ScreenResult",
    "SitefinderError",
    "Study",
    "__version__",
    "ahp_weights",
    "batch",
    "compare",
    "default_scenario",
    "load_scenario",
    "run",
    "screen",
    "select",
    "sensitivity",
    "sweep",
]


def _load(name: str) -> Any:
    return getattr(importlib.import_module(_LAZY[name]), name)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'sitefinder' has no attribute {name!r}")
    value = _load(name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _function_over_module(name: str) -> property:
    """A package attribute that stays the public function when the submodule is imported.

    The import system sets ``sitefinder.<name>`` to the submodule when it first loads it;
    a data descriptor on the module's class takes precedence over that assignment, so the
    setter can ignore it (the submodule stays in ``sys.modules``).
    """

    def get(_module: types.ModuleType) -> Any:
        return _load(name)

    def ignore(_module: types.ModuleType, _value: Any) -> None:
        return None

    return property(get, ignore, doc=f"The public :func:`{name}` function.")


class _Package(types.ModuleType):
    """The package's module type, with the shadowed names as properties."""


for _name in _SHADOWED:
    setattr(_Package, _name, _function_over_module(_name))
del _name
sys.modules[__name__].__class__ = _Package
