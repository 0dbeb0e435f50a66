"""How each demo row runs, by name (``DemoModel.runner``): ``fit`` trains it (:class:`~pa_geo.demo.training.FitRunner`,
``pa-geo fit``), ``trees`` fits the CA-geometry gradient-boosted trees (:class:`~pa_geo.demo.trees.TreesRunner`,
``python -m pa_geo.demo.trees``). Both build their data module from the same configs and run in the same worker
pool (:func:`pa_geo.demo.training.run_all`)."""
from __future__ import annotations

from pa_geo.demo.models import FIT, MODELS, TREES
from pa_geo.demo.training import FIT as FIT_RUNNER
from pa_geo.demo.training import Runner
from pa_geo.demo.trees import TREES as TREES_RUNNER
from pa_geo.registry import Registry

RUNNERS: Registry[Runner] = Registry("demo runner")
RUNNERS.register(FIT, FIT_RUNNER)
RUNNERS.register(TREES, TREES_RUNNER)


def runner_of(model: str) -> Runner:
    """The runner of demo row ``model`` (:data:`pa_geo.demo.models.MODELS`)."""
    return RUNNERS.get(MODELS[model].runner)
