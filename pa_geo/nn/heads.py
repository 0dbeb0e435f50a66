"""Task heads over :class:`~pa_geo.nn.outputs.EncoderOutput`: graph, node, contact, protein pair, ligand, mutation.

Heads are sized from the encoder: ``in_dim`` / ``out_dim`` may be left out (None) and are then set by
:meth:`TaskHead.bind` when the model is built (``PaGeoModule`` calls it through the task's kind: ``in_dim`` =
``encoder.graph_dim`` or ``encoder.node_dim`` as ``reads`` says, ``out_dim`` = the task's ``num_outputs``). A value
given explicitly must agree, else binding is a one-line ``ConfigError``. With both given, the head is built at once
(plain PyTorch use: ``NodeHead(encoder.node_dim, 3)``). ``task_input`` says which kind of task a head serves.
MLPs are PyG's :class:`torch_geometric.nn.MLP`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch_geometric.nn import MLP, GINConv, GINEConv, global_mean_pool
from torch_geometric.utils.sparse import index2ptr

from pa_geo.errors import ConfigError, DatasetError
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.nn.profiling import stage


def mlp(in_dim: int, out_dim: int, hidden_dim: int | None, dropout: float = 0.0) -> MLP:
    """``hidden_dim=None``: a linear probe (one Linear); an int: Linear -> SiLU -> Dropout -> Linear."""
    channels = [in_dim, out_dim] if hidden_dim is None else [in_dim, hidden_dim, out_dim]
    return MLP(channels, act="silu", norm=None, dropout=dropout)


class TaskHead(nn.Module):
    """Base of the heads: widths known now or bound later (:meth:`bind`); layers are made by :meth:`build`.

    Class attributes: ``task_input`` (the kind of task it serves), ``reads`` (``"graph"`` or ``"node"``: which
    encoder width is its input), ``fixed_out`` (an output width the head always has, e.g. 1 contact logit).
    """

    task_input: ClassVar[str] = ""
    reads: ClassVar[str] = "graph"
    fixed_out: ClassVar[int | None] = None

    def __init__(self, in_dim: int | None = None, out_dim: int | None = None) -> None:
        super().__init__()
        self.in_dim, self.out_dim = in_dim, out_dim if self.fixed_out is None else self.fixed_out
        if self.fixed_out is not None and out_dim not in (None, self.fixed_out):
            raise ConfigError(f"{type(self).__name__}: out_dim is always {self.fixed_out}, got {out_dim}")
        self._bound = False
        if self.in_dim is not None and self.out_dim is not None:
            self._build_once()

    @property
    def bound(self) -> bool:
        """Whether the layers exist."""
        return self._bound

    def _build_once(self) -> None:
        self.build(int(self.in_dim), int(self.out_dim))
        self._bound = True

    def build(self, in_dim: int, out_dim: int) -> None:
        """Make the layers for ``in_dim`` -> ``out_dim``."""
        raise NotImplementedError

    def bind(self, in_dim: int, out_dim: int, where: str = "") -> None:
        """Set the widths from the encoder (``in_dim``) and the task (``out_dim``); a conflicting explicit value is
        a one-line :class:`ConfigError` naming ``where``."""
        name, at = type(self).__name__, f"{where}: " if where else ""
        if self.in_dim is not None and int(self.in_dim) != int(in_dim):
            raise ConfigError(f"{at}{name} in_dim={self.in_dim} but the encoder's {self.reads}_dim is {in_dim} "
                              f"(leave in_dim out: it is read from the encoder)")
        if self.out_dim is not None and int(self.out_dim) != int(out_dim):
            if self.fixed_out is not None:
                raise ConfigError(f"{at}{name} always gives {self.out_dim} output(s) but the task has {out_dim}: use "
                                  f"a head that fits the task")
            raise ConfigError(f"{at}{name} out_dim={self.out_dim} but the task has {out_dim} output(s) (leave out_dim "
                              f"out: it follows from the task)")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        if not self._bound:
            self._build_once()

    def _check_bound(self) -> None:
        if not self._bound:
            raise ConfigError(f"{type(self).__name__} has no widths yet: give in_dim / out_dim, or build it inside "
                              f"PaGeoModule, which binds it to the encoder and the task")

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with stage("head"):  # one profiler scope for every head's forward (pa_geo.nn.profiling)
            return super().__call__(*args, **kwargs)


class GraphHead(TaskHead):
    """Graph-level prediction: ``enc.graph [B, in_dim] -> [B, out_dim]``."""

    task_input = "graph"
    reads = "graph"

    def __init__(self, in_dim: int | None = None, out_dim: int | None = None, hidden_dim: int | None = None,
                 dropout: float = 0.0) -> None:
        self.hidden_dim, self.dropout = hidden_dim, dropout
        super().__init__(in_dim, out_dim)

    def build(self, in_dim: int, out_dim: int) -> None:
        self.net = mlp(in_dim, out_dim, self.hidden_dim, self.dropout)

    def forward(self, enc: EncoderOutput) -> Tensor:
        """``enc.graph [B, in_dim] -> [B, out_dim]``."""
        self._check_bound()
        return self.net(enc.graph)


class NodeHead(GraphHead):
    """Node-level prediction (e.g. secondary structure): ``enc.node [N, in_dim] -> [N, out_dim]``."""

    task_input = "node"
    reads = "node"

    def forward(self, enc: EncoderOutput) -> Tensor:
        """``enc.node [N, in_dim] -> [N, out_dim]``."""
        self._check_bound()
        return self.net(enc.node)


def contact_pairs(ptr: Tensor, min_separation: int) -> Tensor:
    """All node pairs (i < j) of the same graph with ``j - i >= min_separation`` (sequence positions = node order
    within the graph): graph offsets ``ptr [B + 1]`` -> ``pair_index [2, P]`` in batch node indices, graph by graph."""
    bounds = ptr.tolist()
    pairs = [torch.triu_indices(e - s, e - s, offset=min_separation, device=ptr.device) + s
             for s, e in zip(bounds[:-1], bounds[1:])]
    return torch.cat(pairs, dim=1) if pairs else ptr.new_zeros(2, 0)


class ContactHead(TaskHead):
    """Residue-residue contact logits from symmetric pair features ``[h_i * h_j, |h_i - h_j|]``.

    ``forward(enc, pair_index=None, ptr=None) -> (logits [P], pair_index [2, P])``; by default every pair of the same
    graph with ``|i - j| >= min_separation`` (:func:`contact_pairs`; graph offsets ``ptr`` = ``Batch.ptr``, derived
    from ``enc.batch`` when not given); pass ``pair_index`` to score a subset (e.g. sampled pairs, or pairs across
    two proteins). Nodes of a graph must be in sequence order. Always one output.
    """

    task_input = "residue_pair"
    reads = "node"
    fixed_out = 1

    def __init__(self, in_dim: int | None = None, hidden_dim: int = 64, min_separation: int = 6,
                 dropout: float = 0.0) -> None:
        if min_separation < 1:
            raise ConfigError(f"ContactHead: min_separation must be >= 1, got {min_separation}")
        self.hidden_dim, self.min_separation, self.dropout = int(hidden_dim), int(min_separation), dropout
        super().__init__(in_dim, None)

    def build(self, in_dim: int, out_dim: int) -> None:
        self.proj = nn.Linear(in_dim, self.hidden_dim)
        self.out = mlp(2 * self.hidden_dim, 1, self.hidden_dim, self.dropout)

    def forward(self, enc: EncoderOutput, pair_index: Tensor | None = None,
                ptr: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``enc.node [N, in_dim]`` (+ optional ``pair_index [2, P]``) -> ``(logits [P], pair_index [2, P])``."""
        self._check_bound()
        if pair_index is None:
            if ptr is None:
                ptr = index2ptr(enc.batch, int(enc.batch.max()) + 1 if enc.batch.numel() else 0)
            pair_index = contact_pairs(ptr, self.min_separation)
        h = self.proj(enc.node)
        hi, hj = h[pair_index[0]], h[pair_index[1]]
        return self.out(torch.cat([hi * hj, (hi - hj).abs()], dim=-1)).squeeze(-1), pair_index


class ProteinPairHead(TaskHead):
    """Protein-protein prediction (e.g. PPI), symmetric in the two proteins:
    ``(a.graph [B, in_dim], b.graph [B, in_dim]) -> [B, out_dim]`` from ``[a + b, a * b, |a - b|]``."""

    task_input = "protein_pair"
    reads = "graph"

    def __init__(self, in_dim: int | None = None, out_dim: int | None = None, hidden_dim: int = 128,
                 dropout: float = 0.0) -> None:
        self.hidden_dim, self.dropout = hidden_dim, dropout
        super().__init__(in_dim, out_dim)

    def build(self, in_dim: int, out_dim: int) -> None:
        self.net = mlp(3 * in_dim, out_dim, self.hidden_dim, self.dropout)

    def forward(self, a: EncoderOutput, b: EncoderOutput) -> Tensor:
        """``a.graph, b.graph [B, in_dim] -> [B, out_dim]``, equal for (a, b) and (b, a)."""
        self._check_bound()
        if a.graph.shape != b.graph.shape:
            raise DatasetError(f"ProteinPairHead: paired batches differ in shape {list(a.graph.shape)} vs "
                               f"{list(b.graph.shape)}")
        ga, gb = a.graph, b.graph
        return self.net(torch.cat([ga + gb, ga * gb, (ga - gb).abs()], dim=-1))


class LigandHead(TaskHead):
    """Protein-ligand prediction (e.g. affinity): a small GIN/GINE over the ligand's atom graph (element
    embedding, ``num_layers`` layers, mean pool) fused with the protein's graph vector through
    ``[p, l, p * l]`` of their projections to ``hidden_dim``.

    ``forward(enc, ligand) -> [B, out_dim]``; ``ligand`` is a PyG Batch of B ligand graphs with ``element [M]``
    (int64 in 0..num_elements-1), ``edge_index``, ``batch`` and, when ``ligand_edge_dim`` is set, ``edge_attr``.
    """

    task_input = "ligand"
    reads = "graph"

    def __init__(self, in_dim: int | None = None, out_dim: int | None = None, ligand_hidden: int = 64,
                 num_elements: int = 16, num_layers: int = 3, hidden_dim: int = 128,
                 ligand_edge_dim: int | None = None, dropout: float = 0.0) -> None:
        self.num_elements, self.ligand_edge_dim = int(num_elements), ligand_edge_dim
        self.ligand_hidden, self.num_layers = ligand_hidden, num_layers
        self.hidden_dim, self.dropout = hidden_dim, dropout
        super().__init__(in_dim, out_dim)

    def build(self, in_dim: int, out_dim: int) -> None:
        width = self.ligand_hidden
        self.embed = nn.Embedding(self.num_elements, width)
        convs: list[nn.Module] = []
        for _ in range(self.num_layers):
            net = MLP([width, width, width], norm=None)
            convs.append(GINEConv(net, train_eps=True, edge_dim=self.ligand_edge_dim) if self.ligand_edge_dim
                         else GINConv(net, train_eps=True))
        self.convs = nn.ModuleList(convs)
        self.protein_proj = nn.Linear(in_dim, self.hidden_dim)
        self.ligand_proj = nn.Linear(width, self.hidden_dim)
        self.out = mlp(3 * self.hidden_dim, out_dim, self.hidden_dim, self.dropout)

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
        self._check_bound()
        lig = self.encode_ligand(ligand)
        if lig.size(0) != enc.graph.size(0):
            raise DatasetError(f"LigandHead: {enc.graph.size(0)} proteins but {lig.size(0)} ligands in the batch")
        p, l = self.protein_proj(enc.graph), self.ligand_proj(lig)
        return self.out(torch.cat([p, l, p * l], dim=-1))


class MutationHead(TaskHead):
    """Mutation effect (e.g. ddG): wild-type and mutant encodings -> ``[B, out_dim]`` from difference features
    ``[m - w, |m - w|, (m + w) / 2]`` of the graph vectors.

    ``antisymmetric=True`` returns ``f(w, m) - f(m, w)``: swapping wild type and mutant flips the sign (and an
    identical pair predicts exactly 0), a physical constraint for ddG.
    """

    task_input = "mutation"
    reads = "graph"

    def __init__(self, in_dim: int | None = None, out_dim: int | None = None, hidden_dim: int = 128,
                 antisymmetric: bool = False, dropout: float = 0.0) -> None:
        self.hidden_dim, self.antisymmetric, self.dropout = hidden_dim, antisymmetric, dropout
        super().__init__(in_dim, out_dim)

    def build(self, in_dim: int, out_dim: int) -> None:
        self.net = mlp(3 * in_dim, out_dim, self.hidden_dim, self.dropout)

    def _f(self, w: Tensor, m: Tensor) -> Tensor:
        d = m - w
        return self.net(torch.cat([d, d.abs(), (m + w) / 2], dim=-1))

    def forward(self, wild: EncoderOutput, mutant: EncoderOutput) -> Tensor:
        """``wild.graph, mutant.graph [B, in_dim] -> [B, out_dim]``."""
        self._check_bound()
        if wild.graph.shape != mutant.graph.shape:
            raise DatasetError(f"MutationHead: wild-type {list(wild.graph.shape)} and mutant "
                               f"{list(mutant.graph.shape)} batches differ")
        w, m = wild.graph, mutant.graph
        return self._f(w, m) - self._f(m, w) if self.antisymmetric else self._f(w, m)
