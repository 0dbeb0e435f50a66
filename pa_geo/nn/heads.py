"""Task heads over :class:`~pa_geo.nn.outputs.EncoderOutput`: graph, node, contact, protein pair, ligand, mutation."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import GINConv, GINEConv, global_mean_pool
from torch_geometric.nn import MLP as PygMLP

from pa_geo.errors import ConfigError, DatasetError
from pa_geo.nn.outputs import EncoderOutput


def mlp(in_dim: int, out_dim: int, hidden_dim: int | None, dropout: float = 0.0) -> nn.Module:
    """``hidden_dim=None``: a linear probe; an int: Linear -> SiLU -> Dropout -> Linear."""
    if hidden_dim is None:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden_dim, out_dim))


class GraphHead(nn.Module):
    """Graph-level prediction: ``enc.graph [B, in_dim] -> [B, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp(in_dim, out_dim, hidden_dim, dropout)

    def forward(self, enc: EncoderOutput) -> Tensor:
        """``enc.graph [B, in_dim] -> [B, out_dim]``."""
        return self.net(enc.graph)


class NodeHead(nn.Module):
    """Node-level prediction (e.g. secondary structure): ``enc.node [N, in_dim] -> [N, out_dim]``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp(in_dim, out_dim, hidden_dim, dropout)

    def forward(self, enc: EncoderOutput) -> Tensor:
        """``enc.node [N, in_dim] -> [N, out_dim]``."""
        return self.net(enc.node)


def contact_pairs(batch: Tensor, min_separation: int) -> Tensor:
    """All node pairs (i < j) of the same graph with ``j - i >= min_separation`` (sequence positions = node order
    within the graph): ``batch [N] -> pair_index [2, P]`` in global node indices, graph by graph."""
    counts = torch.bincount(batch) if batch.numel() else batch.new_zeros(0)
    starts = torch.cumsum(counts, 0) - counts
    pairs = [torch.triu_indices(int(c), int(c), offset=min_separation, device=batch.device) + int(s)
             for c, s in zip(counts.tolist(), starts.tolist())]
    return torch.cat(pairs, dim=1) if pairs else batch.new_zeros(2, 0)


class ContactHead(nn.Module):
    """Residue-residue contact logits from symmetric pair features ``[h_i * h_j, |h_i - h_j|]``.

    ``forward(enc, pair_index=None) -> (logits [P], pair_index [2, P])``; by default every pair of the same graph
    with ``|i - j| >= min_separation`` (see :func:`contact_pairs`); pass ``pair_index`` to score a subset (e.g. a
    sampled training set of pairs). Nodes of a graph must be in sequence order.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 64, min_separation: int = 6, dropout: float = 0.0) -> None:
        super().__init__()
        if min_separation < 1:
            raise ConfigError(f"ContactHead: min_separation must be >= 1, got {min_separation}")
        self.min_separation = int(min_separation)
        self.proj = nn.Linear(in_dim, hidden_dim)
        self.out = mlp(2 * hidden_dim, 1, hidden_dim, dropout)

    def forward(self, enc: EncoderOutput, pair_index: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``enc.node [N, in_dim]`` (+ optional ``pair_index [2, P]``) -> ``(logits [P], pair_index [2, P])``."""
        if pair_index is None:
            pair_index = contact_pairs(enc.batch, self.min_separation)
        h = self.proj(enc.node)
        hi, hj = h[pair_index[0]], h[pair_index[1]]
        return self.out(torch.cat([hi * hj, (hi - hj).abs()], dim=-1)).squeeze(-1), pair_index


class ProteinPairHead(nn.Module):
    """Protein-protein prediction (e.g. PPI), symmetric in the two proteins:
    ``(a.graph [B, in_dim], b.graph [B, in_dim]) -> [B, out_dim]`` from ``[a + b, a * b, |a - b|]``."""

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = mlp(3 * in_dim, out_dim, hidden_dim, dropout)

    def forward(self, a: EncoderOutput, b: EncoderOutput) -> Tensor:
        """``a.graph, b.graph [B, in_dim] -> [B, out_dim]``, equal for (a, b) and (b, a)."""
        if a.graph.shape != b.graph.shape:
            raise DatasetError(f"ProteinPairHead: paired batches differ in shape {list(a.graph.shape)} vs "
                               f"{list(b.graph.shape)}")
        ga, gb = a.graph, b.graph
        return self.net(torch.cat([ga + gb, ga * gb, (ga - gb).abs()], dim=-1))


class LigandHead(nn.Module):
    """Protein-ligand prediction (e.g. affinity): a small GIN/GINE over the ligand's atom graph (element
    embedding, ``num_layers`` layers, mean pool) fused with the protein's graph vector through
    ``[p, l, p * l]`` of their projections to ``hidden_dim``.

    ``forward(enc, ligand) -> [B, out_dim]``; ``ligand`` is a PyG Batch of B ligand graphs with ``element [M]``
    (int64 in 0..num_elements-1), ``edge_index``, ``batch`` and, when ``ligand_edge_dim`` is set, ``edge_attr``.
    """

    def __init__(self, in_dim: int, out_dim: int, ligand_hidden: int = 64, num_elements: int = 16,
                 num_layers: int = 3, hidden_dim: int = 128, ligand_edge_dim: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.num_elements, self.ligand_edge_dim = int(num_elements), ligand_edge_dim
        self.embed = nn.Embedding(num_elements, ligand_hidden)
        convs: list[nn.Module] = []
        for _ in range(num_layers):
            net = PygMLP([ligand_hidden, ligand_hidden, ligand_hidden], norm=None)
            convs.append(GINEConv(net, train_eps=True, edge_dim=ligand_edge_dim) if ligand_edge_dim
                         else GINConv(net, train_eps=True))
        self.convs = nn.ModuleList(convs)
        self.protein_proj = nn.Linear(in_dim, hidden_dim)
        self.ligand_proj = nn.Linear(ligand_hidden, hidden_dim)
        self.out = mlp(3 * hidden_dim, out_dim, hidden_dim, dropout)

    def encode_ligand(self, ligand: Any) -> Tensor:
        """Ligand graphs -> ``[B, ligand_hidden]``."""
        element = ligand.element
        if element.numel() and (int(element.min()) < 0 or int(element.max()) >= self.num_elements):
            raise DatasetError(f"LigandHead: element index out of range 0..{self.num_elements - 1}")
        lig_batch = getattr(ligand, "batch", None)
        lig_batch = lig_batch if lig_batch is not None else element.new_zeros(element.size(0))
        kwargs = {}
        if self.ligand_edge_dim:
            kwargs["edge_attr"] = ligand.edge_attr
        h = self.embed(element)
        for conv in self.convs:
            h = h + torch.relu(conv(h, ligand.edge_index, **kwargs))
        return global_mean_pool(h, lig_batch, size=int(getattr(ligand, "num_graphs", 1) or 1))

    def forward(self, enc: EncoderOutput, ligand: Any) -> Tensor:
        """``enc.graph [B, in_dim]`` + B ligand graphs -> ``[B, out_dim]``."""
        lig = self.encode_ligand(ligand)
        if lig.size(0) != enc.graph.size(0):
            raise DatasetError(f"LigandHead: {enc.graph.size(0)} proteins but {lig.size(0)} ligands in the batch")
        p, l = self.protein_proj(enc.graph), self.ligand_proj(lig)
        return self.out(torch.cat([p, l, p * l], dim=-1))


class MutationHead(nn.Module):
    """Mutation effect (e.g. ddG): wild-type and mutant encodings -> ``[B, out_dim]`` from difference features
    ``[m - w, |m - w|, (m + w) / 2]`` of the graph vectors.

    ``antisymmetric=True`` returns ``f(w, m) - f(m, w)``: swapping wild type and mutant flips the sign (and an
    identical pair predicts exactly 0), a physical constraint for ddG.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 128, antisymmetric: bool = False,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.antisymmetric = antisymmetric
        self.net = mlp(3 * in_dim, out_dim, hidden_dim, dropout)

    def _f(self, w: Tensor, m: Tensor) -> Tensor:
        d = m - w
        return self.net(torch.cat([d, d.abs(), (m + w) / 2], dim=-1))

    def forward(self, wild: EncoderOutput, mutant: EncoderOutput) -> Tensor:
        """``wild.graph, mutant.graph [B, in_dim] -> [B, out_dim]``."""
        if wild.graph.shape != mutant.graph.shape:
            raise DatasetError(f"MutationHead: wild-type {list(wild.graph.shape)} and mutant "
                               f"{list(mutant.graph.shape)} batches differ")
        w, m = wild.graph, mutant.graph
        return self._f(w, m) - self._f(m, w) if self.antisymmetric else self._f(w, m)
