"""The models the demo compares: the ProteinAdapter model and the baselines/ablations, built from the same classes
that ``configs/*.yaml`` name (so every row of the demo table is reproducible with ``pa-geo fit``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from torch import nn

from pa_geo.errors import ConfigError

DEMO_MODELS: tuple[str, ...] = ("adapter", "linear_probe", "mlp_probe", "no_cross_attention", "global_pool_only")
MODEL_DESCRIPTIONS: dict[str, str] = {
    "adapter": "ProteinAdapter (self + cross-level attention) + multi-scale top-k predictor",
    "linear_probe": "linear head on the frozen embeddings (mean-pooled for graph tasks)",
    "mlp_probe": "2-layer MLP head on the frozen embeddings (mean-pooled for graph tasks)",
    "no_cross_attention": "adapter without cross-attention (levels projected and summed) + multi-scale predictor",
    "global_pool_only": "ProteinAdapter + one scale, no pooling (global readout only)",
}


@dataclass
class DemoExperiment:
    """One demo dataset: a primary task (+ auxiliary tasks, multi-task) over named embedding levels.

    levels       node field -> dim of the frozen embeddings the models read, e.g. ``{"emb_near_8": 256}``
    embeddings   ``PaGeoDataModule(embeddings=...)`` entries: ``{cache, backbone, layers}``
    level        ``"node"`` (per-residue heads) or ``"graph"`` (per-protein heads)
    """

    name: str
    task: str
    level: Literal["node", "graph"]
    num_outputs: int
    levels: dict[str, int]
    embeddings: list[dict]
    aux_tasks: dict[str, float] = field(default_factory=dict)
    aux_outputs: dict[str, int] = field(default_factory=dict)
    attention: str = "global"


def build_demo_model(model: str, exp: DemoExperiment, d_model: int = 128, hidden: int = 128,
                     dropout: float = 0.1) -> tuple[nn.Module, nn.Module, dict[str, nn.Module]]:
    """``(encoder, head, aux_heads)`` of one demo model for ``exp``.

    The encoder maps a PyG batch to ``EncoderOutput(graph [B, Dg], node [N, Dn])``; the heads read
    ``node`` (node-level experiments) or ``graph`` (graph-level ones).
    """
    from pa_geo.nn.adapter import ProteinAdapter
    from pa_geo.nn.baselines import AdapterWithoutCrossAttention, MeanEmbeddingEncoder
    from pa_geo.nn.encoder import AdapterEncoder
    from pa_geo.nn.heads import GraphHead, NodeHead
    from pa_geo.nn.predictor import MultiScalePredictor

    if model not in DEMO_MODELS:
        raise ConfigError(f"unknown demo model {model!r}; known: {', '.join(DEMO_MODELS)}")
    adapter_kw = dict(d_model=d_model, n_blocks=2, n_heads=4, attention=exp.attention, dropout=dropout)
    predictor_kw = dict(hidden_dim=hidden, num_scales=3, conv="gcn", pool="topk", pool_kwargs={"ratio": 0.5},
                        readout="mean", merge="concat", dropout=dropout)
    head_hidden: int | None = 2 * hidden
    if model in ("linear_probe", "mlp_probe"):
        encoder: nn.Module = MeanEmbeddingEncoder(exp.levels, mix="concat")
        head_hidden = None if model == "linear_probe" else 2 * hidden
    elif model == "no_cross_attention":
        encoder = AdapterEncoder(AdapterWithoutCrossAttention(exp.levels, **adapter_kw),
                                 MultiScalePredictor(d_model, **predictor_kw))
    else:
        adapter = ProteinAdapter(exp.levels, fusion="concat", cross_attention=len(exp.levels) > 1, **adapter_kw)
        if model == "global_pool_only":
            predictor_kw.update(num_scales=1, pool="none", pool_kwargs=None)
        encoder = AdapterEncoder(adapter, MultiScalePredictor(d_model, **predictor_kw))
    head_cls = NodeHead if exp.level == "node" else GraphHead
    in_dim = encoder.node_dim if exp.level == "node" else encoder.graph_dim
    head = head_cls(in_dim, exp.num_outputs, hidden_dim=head_hidden, dropout=dropout)
    aux_heads = {t: head_cls(in_dim, n, hidden_dim=head_hidden, dropout=dropout) for t, n in exp.aux_outputs.items()}
    return encoder, head, aux_heads
