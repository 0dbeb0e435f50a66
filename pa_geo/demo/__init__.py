"""The demo (``pa-geo demo``): tasks on the shipped data (``data/``), the run that trains every model row from the
shipped configs, and its report / plots (matplotlib: ``pip install pa_geo[demo]``).

Importing this package registers the demo tasks (``demo_ss3``, ``demo_rsa``, ``demo_solubility``) and nothing else;
the ``pa-geo`` program imports it, so ``pa-geo fit --config configs/demo_ss3.yaml`` finds them.
"""
from pa_geo.demo.tasks import DEMO_TASKS, register_demo_tasks

register_demo_tasks()

__all__ = ["DEMO_TASKS", "register_demo_tasks"]
