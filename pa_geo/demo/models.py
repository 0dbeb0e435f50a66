"""The demo's rows: each one is an experiment's config composed with an ablation config and command-line overrides,
exactly what a user passes to ``pa-geo fit`` (printed by the demo), so a row cannot drift from the configs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pa_geo.errors import ConfigError

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
EXPERIMENTS: dict[str, str] = {  # experiment -> its config (relative to configs/)
    "structure": "multitask/demo_ss3_rsa.yaml",  # SS3 per residue + RSA (auxiliary), NEAR-8 + ProteinMPNN-3
    "solubility": "demo_solubility.yaml",  # per-protein solubility, sequence only, NEAR-4 + NEAR-8
}
DEMO_MODELS: tuple[str, ...] = ("adapter", "linear_probe", "mlp_probe", "no_cross_attention", "global_pool_only")
MODEL_DESCRIPTIONS: dict[str, str] = {
    "adapter": "ProteinAdapter (self + cross-level attention) + multi-scale top-k predictor",
    "linear_probe": "linear head on the frozen embeddings (mean-pooled for graph tasks)",
    "mlp_probe": "2-layer MLP head on the frozen embeddings (mean-pooled for graph tasks)",
    "no_cross_attention": "ProteinAdapter without cross-level attention + multi-scale predictor",
    "global_pool_only": "ProteinAdapter + one scale, no pooling (global readout only)",
}
ABLATIONS: dict[str, list[str]] = {  # row -> ablation configs composed after the experiment's config
    "adapter": [],
    "linear_probe": ["ablations/mean_probe.yaml"],
    "mlp_probe": ["ablations/mean_probe.yaml"],
    "no_cross_attention": ["ablations/no_cross_attention.yaml"],
    "global_pool_only": ["ablations/pool_none.yaml"],
}


def _plain(value: Any) -> Any:
    """A parsed jsonargparse value (Namespaces inside) as plain dicts / lists for a JSON override."""
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def model_args(model: str, experiment_config: Any, configs: Path = CONFIGS) -> list[str]:
    """``pa-geo fit`` arguments after ``--config <experiment>`` that make row ``model``.

    ``experiment_config``: the parsed config of the experiment alone (``cli.config``), read for what the probes must
    repeat on the command line: the adapter's levels (a probe reads the same embedding fields) and, for the linear
    probe, every head with ``hidden_dim: null``.
    """
    if model not in DEMO_MODELS:
        raise ConfigError(f"unknown demo model {model!r}; known: {', '.join(DEMO_MODELS)}")
    args = [a for rel in ABLATIONS[model] for a in ("--config", str(configs / rel))]
    cfg_model = experiment_config["model"]
    if model in ("linear_probe", "mlp_probe"):
        levels = _plain(cfg_model["encoder"]["init_args"]["adapter"]["init_args"]["levels"])
        args += ["--model.encoder.init_args.levels", json.dumps(levels)]
    if model == "linear_probe":
        args += ["--model.head.init_args.hidden_dim", "null"]
        aux = _plain(cfg_model.get("aux_heads") or {})
        if aux:
            for head in aux.values():
                head.setdefault("init_args", {})["hidden_dim"] = None
            args += ["--model.aux_heads", json.dumps(aux)]
    return args
