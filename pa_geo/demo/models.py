"""The demo's rows: each one is an experiment's config composed with ONE ablation config of ``configs/ablations/``
(by name only), exactly what a user passes to ``pa-geo fit`` (printed by the demo), so a row cannot drift from the
configs. A row that is not a trained model (``ca_geometry_trees``) names another runner
(:mod:`pa_geo.demo.runners`) and reads the experiment's data through the same configs.

Each row has its own learning rate per experiment (``DemoModel.lr``), passed as ``--model.lr`` (trees:
``--learning-rate``), so the printed command shows it."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from pa_geo.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXPERIMENTS: dict[str, str] = {  # experiment -> its config (relative to configs/)
    "structure": "multitask/demo_ss8_rsa.yaml",  # 8-state DSSP + RSA (auxiliary) from CA traces: NEAR-8 + MPNN-CA-3
    "solubility": "demo_solubility.yaml",  # per-protein solubility, sequence only: NEAR-4 + NEAR-8
}
SEQUENCE_ONLY = {"solubility"}  # experiments without coordinates
FIT, TREES = "fit", "trees"  # runner names (pa_geo.demo.runners.RUNNERS)

# Learning rates chosen on the validation split by `python -m pa_geo.demo.sweep --lr-grid` (trained rows: 1e-3 3e-3
# 1e-2; trees: 0.025 0.05 0.1; the demo's epochs; seed 0) on the structure experiment, the best per row. The
# solubility experiment and the rows outside the demo's default set run at the adapter's rate.
NN_LR: dict[str, float] = {"structure": 3e-3, "solubility": 3e-3}
TREES_LR: dict[str, float] = {"structure": 0.05}
MLP_PROBE_LR: dict[str, float] = {"structure": 1e-2, "solubility": 3e-3}


@dataclass(frozen=True)
class DemoModel:
    """A row of the demo: ``ablation`` (file in ``configs/ablations/``, None = the task config as it is);
    ``needs_structure``: it reads coordinates only (no run on a sequence-only experiment, where it has no edges);
    ``runner``: how it runs (a name in :data:`pa_geo.demo.runners.RUNNERS`: ``fit`` trains it with ``pa-geo fit``);
    ``lr``: its learning rate per experiment."""

    ablation: str | None
    description: str
    needs_structure: bool = False
    runner: str = FIT
    lr: Mapping[str, float] = field(default_factory=lambda: dict(NN_LR))

    def learning_rate(self, experiment: str) -> float:
        """The row's learning rate on ``experiment`` (one-line ConfigError when it has none)."""
        if experiment not in self.lr:
            raise ConfigError(f"demo model {self.description!r} has no learning rate for experiment {experiment!r}")
        return float(self.lr[experiment])


MODELS: dict[str, DemoModel] = {
    "adapter": DemoModel(None, "ProteinAdapter (self-attention + cross-attention over node sets) + multi-scale "
                               "top-k predictor"),
    "linear_probe": DemoModel("linear_probe", "linear head on the frozen levels (mean-pooled for protein tasks)"),
    "mlp_probe": DemoModel("mlp_probe", "2-layer MLP head on the frozen levels (mean-pooled for protein tasks)",
                           lr=MLP_PROBE_LR),
    "scalar_mix": DemoModel("scalar_mix", "scalar mix of the frozen levels + the task's MLP head"),
    "summed_levels_transformer": DemoModel("summed_levels_transformer", "levels projected and summed, plain "
                                           "transformer of the adapter's depth/width + the same predictor"),
    "no_self_attention": DemoModel("no_self_attention", "adapter without intra-level self-attention"),
    "no_cross_attention": DemoModel("no_cross_attention", "adapter without cross-attention (separate streams, late "
                                    "fusion)"),
    "residue_level_mixing": DemoModel("residue_level_mixing", "adapter with per-residue level mixing "
                                      "(cross_scope: residue)"),
    "no_final_merge": DemoModel("no_final_merge", "predictor without the final merge of scales (merge: last)"),
    "global_pool_only": DemoModel("global_pool_only", "predictor with one scale and global pooling only"),
    "gearnet": DemoModel("gearnet", "GearNet-Edge-style relational conv, one-hot residues (no frozen embeddings)"),
    "esm_gearnet": DemoModel("esm_gearnet", "ESM-GearNet-style: GearNet-Edge-style conv on the frozen sequence "
                                            "embeddings (serial fusion)"),
    "gvp": DemoModel("gvp", "GVP-GNN, residue-type embedding (no frozen embeddings)", needs_structure=True),
    "esm_gvp": DemoModel("esm_gvp", "GVP-GNN with the frozen sequence embeddings in its node scalars",
                         needs_structure=True),
    "geometric_bias": DemoModel("geometric_bias", "adapter with the geometric attention bias (CA distance + sequence "
                                                     "separation per head; off by default)",
                                     needs_structure=True),
    "no_geom_level": DemoModel("no_geom_level", "adapter without the geom level (per-residue CA geometry)"),
    "gcn_predictor": DemoModel("gcn_predictor", "predictor with GCN convs (topology only, no edge features)"),
    "ca_geometry_trees": DemoModel(None, "CA-geometry features + scikit-learn gradient-boosted trees (no sequence, "
                                         "no embeddings)", needs_structure=True, runner=TREES, lr=TREES_LR),
}
DEMO_MODELS: tuple[str, ...] = ("adapter", "mlp_probe", "summed_levels_transformer", "ca_geometry_trees")
ALL_MODELS: tuple[str, ...] = tuple(MODELS)
MODEL_DESCRIPTIONS: dict[str, str] = {name: m.description for name, m in MODELS.items()}


def models_for(experiment: str, models: list[str]) -> list[str]:
    """The rows of ``models`` that run on ``experiment`` (coordinate-only models skip sequence-only experiments)."""
    return [m for m in models if not (MODELS[m].needs_structure and experiment in SEQUENCE_ONLY)]


def _plain(value: Any) -> Any:
    """A parsed jsonargparse value (Namespaces inside) as plain dicts / lists for a JSON override."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def model_args(model: str, experiment_config: Any, configs: Path = CONFIGS) -> list[str]:
    """``pa-geo fit`` arguments after ``--config <experiment>`` that make row ``model``: its ablation config and,
    for the linear probe of a multi-task experiment, the auxiliary heads without hidden layer (an ablation config
    cannot name another task's head). ``experiment_config``: the parsed config of the experiment alone."""
    if model not in MODELS:
        raise ConfigError(f"unknown demo model {model!r}; known: {', '.join(MODELS)}")
    ablation = MODELS[model].ablation
    args = [] if ablation is None else ["--config", str(configs / "ablations" / f"{ablation}.yaml")]
    aux = _plain(experiment_config["model"].get("aux_heads") or {})
    if model == "linear_probe" and aux:
        for head in aux.values():
            head.setdefault("init_args", {})["hidden_dim"] = None
        args += ["--model.aux_heads", json.dumps(aux)]
    return args
