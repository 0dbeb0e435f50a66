"""The demo (``pa-geo demo``): tasks on the shipped data (``data/``), the run that trains every model row from the
shipped configs, and its report / plots (matplotlib: ``pip install pa_geo[demo]``).

The demo tasks (``demo_ss8``, ``demo_ss3``, ``demo_rsa``, ``demo_solubility``) reach the task registry through the
``pa_geo.tasks`` entry point (``pa_geo.demo.tasks:register_demo_tasks``), so ``pa-geo fit --config
configs/demo_ss8.yaml`` finds them without anything importing this package first.
"""
