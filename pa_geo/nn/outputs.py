"""What an encoder (adapter + predictor, or a baseline probe) hands to a task head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class EncoderOutput:
    """Representations of one PyG batch of B graphs with N nodes in total.

    graph  [B, D_graph]  one vector per graph (multi-scale readout, or mean-pooled embeddings for probes)
    node   [N, D_node]   one vector per node (residue or atom), multi-scale context lifted back where available
    batch  [N]           graph index of every node (``Batch.batch``)
    """

    graph: torch.Tensor
    node: torch.Tensor
    batch: torch.Tensor


class OneWidthEncoder(nn.Module):
    """Base of encoders whose node rows ``[N, d]`` and graph rows ``[B, d]`` have one width ``d``, set as ``self._dim``
    in ``__init__``; :attr:`graph_dim` / :attr:`node_dim` are what heads are sized from."""

    _dim: int

    @property
    def graph_dim(self) -> int:
        """Width of ``EncoderOutput.graph``."""
        return self._dim

    @property
    def node_dim(self) -> int:
        """Width of ``EncoderOutput.node``."""
        return self._dim
