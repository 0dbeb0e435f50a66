"""The full trainable encoder: ProteinAdapter (fuse frozen levels per node) -> MultiScalePredictor (pool, read out)."""
from __future__ import annotations

from typing import Optional, Protocol

from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from pa_geo.errors import ConfigError
from pa_geo.nn.outputs import EncoderOutput


class Predictor(Protocol):
    """What :class:`AdapterEncoder` needs from a predictor: ``(x [N, in_dim], batch) -> EncoderOutput``."""

    graph_dim: int
    node_dim: int

    def __call__(self, x: Tensor, batch: Data | Batch) -> EncoderOutput: ...


class AdapterEncoder(nn.Module):
    """``adapter(batch) -> x [N, d_model]`` then ``predictor(x, batch) -> EncoderOutput(graph [B, graph_dim],
    node [N, node_dim], batch [N])``. ``graph_dim`` / ``node_dim`` are the predictor's.

    ``predictor=None``: the adapter slot holds a whole encoder (``adapter(batch) -> EncoderOutput``, with its own
    ``graph_dim`` / ``node_dim``): the baselines that replace both stages (probes, GearNet, GVP). Configs swap them
    in by name (``configs/ablations/``), and the task's ``levels`` carry over to them.
    """

    def __init__(self, adapter: nn.Module, predictor: Optional[nn.Module] = None) -> None:
        super().__init__()
        if predictor is None:
            for attr in ("graph_dim", "node_dim"):
                if not isinstance(getattr(adapter, attr, None), int):
                    raise ConfigError(f"AdapterEncoder: without a predictor the adapter must be an encoder, but "
                                      f"{type(adapter).__name__} has no int {attr}")
            self.adapter, self.predictor = adapter, None
            return
        in_dim = getattr(predictor, "in_dim", None)
        out_dim = getattr(adapter, "out_dim", None)
        if in_dim is None and out_dim is not None and callable(getattr(predictor, "bind", None)):
            predictor.bind(out_dim)  # the predictor's input width is the adapter's output width
            in_dim = out_dim
        if in_dim is not None and out_dim is not None and in_dim != out_dim:
            raise ConfigError(f"AdapterEncoder: adapter emits {out_dim}-dim node features but the predictor "
                              f"expects in_dim={in_dim}")
        for attr in ("graph_dim", "node_dim"):
            if not isinstance(getattr(predictor, attr, None), int):
                raise ConfigError(f"AdapterEncoder: predictor {type(predictor).__name__} has no int {attr}")
        self.adapter = adapter
        self.predictor = predictor

    @property
    def graph_dim(self) -> int:
        """Width of ``EncoderOutput.graph``."""
        return (self.predictor or self.adapter).graph_dim

    @property
    def node_dim(self) -> int:
        """Width of ``EncoderOutput.node``."""
        return (self.predictor or self.adapter).node_dim

    @property
    def required_batch_attributes(self) -> list[str]:
        """Batch fields the adapter and the predictor read (ProteinWorkshop's convention), each once."""
        fields = [*getattr(self.adapter, "required_batch_attributes", []),
                  *getattr(self.predictor, "required_batch_attributes", [])]
        return list(dict.fromkeys(fields))

    def forward(self, batch: Data | Batch) -> EncoderOutput:
        out = self.adapter(batch)
        return out if self.predictor is None else self.predictor(out, batch)
