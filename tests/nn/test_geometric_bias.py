"""The adapter's geometric attention bias (pa_geo.nn.geometric_bias) with TWO levels and the shipped model widths,
on residue graphs of real chains: dense references for the chunked and the edge forms, invariance to rigid motions
(a centred pose and a pose 1000 A away), sensitivity to non-rigid changes, batch independence, gradients, memory
per call, and the switch that leaves the adapter exactly as it was."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch_geometric.data import Batch
from torch_geometric.utils import softmax

from pa_geo.errors import ConfigError
from pa_geo.graphs import residue_graph
from pa_geo.io.protein import Protein
from pa_geo.nn import varlen as V
from pa_geo.nn.adapter import ProteinAdapter as _ProteinAdapter
from pa_geo.nn.baselines import SummedLevelsTransformer as _SummedLevelsTransformer
from pa_geo.nn.cross_attention import edge_attention
from pa_geo.nn.geometric_bias import BiasSpec, GeometricBias, NodeGeometry, PairMap, edge_geometry
from tests.helpers.proteins import structuredb_chains


def ProteinAdapter(*args, geometric_bias: bool = True, **kwargs):  # noqa: N802 - the class, with the bias on
    """The adapter with the geometric bias switched on (it is off by default) unless a test says otherwise."""
    return _ProteinAdapter(*args, geometric_bias=geometric_bias, **kwargs)


def SummedLevelsTransformer(*args, geometric_bias: bool = True, **kwargs):  # noqa: N802
    """The summed-levels transformer with the geometric bias on unless a test says otherwise."""
    return _SummedLevelsTransformer(*args, geometric_bias=geometric_bias, **kwargs)


LEVELS = {"emb_near_8": 24, "emb_proteinmpnn_ca_3": 16}
H, DH = 4, 8


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def posed(p: Protein, pose: str) -> Protein:
    """``p`` as given (``"given"``), rotated about its centroid and centred at the origin (``"centred"``), or
    rotated and 1000 A away (``"far"``)."""
    bb = p.backbone.astype(np.float64)
    if pose != "given" and p.has_structure:
        centre = np.nanmean(bb[:, 1], axis=0)
        bb = (bb - centre) @ _rotation(7).T + (0.0 if pose == "centred" else np.array([1000.0, -1000.0, 1000.0]))
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb.astype(np.float32),
                   p.chain_breaks, source=p.source, has_structure=p.has_structure)


def ca_trace(p: Protein) -> Protein:
    bb = p.backbone.copy()
    bb[:, [0, 2, 3]] = np.nan
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks)


def two_chains(p: Protein) -> Protein:
    """``p`` split into chains A and B halfway (a complex: other-chain pairs)."""
    ids = np.where(np.arange(len(p)) < len(p) // 2, "A", "B").astype(object)
    breaks = p.chain_breaks.copy()
    breaks[len(p) // 2] = True
    return Protein(p.id + "AB", p.sequence, ids, p.residue_numbers, p.insertion_codes, p.backbone, breaks)


@lru_cache(maxsize=None)
def chains() -> tuple[Protein, ...]:
    return tuple(structuredb_chains())  # 20, 77, 146 residues


def graph(p: Protein, seed: int = 0):
    g = residue_graph(p, radius=10.0)
    gen = torch.Generator().manual_seed(seed)
    for name, dim in LEVELS.items():
        g[name] = torch.randn(g.num_nodes, dim, generator=gen)
    return g


def batch_of(proteins, pose: str = "given") -> Batch:
    return Batch.from_data_list([graph(posed(p, pose), seed=i) for i, p in enumerate(proteins)])


def proteins() -> list[Protein]:
    a, b, c = chains()
    return [two_chains(c), ca_trace(b), a, Protein.from_sequence("seq", "MKTAYIAKQRQISFVKSHFSRQ")]


# ---- the bias itself -----------------------------------------------------------------------------------------
def _dense_bias(pair_map: PairMap, bias: GeometricBias, nodes: NodeGeometry) -> torch.Tensor:
    """[H, N, N] bias of every node pair, written out from the definition."""
    spec = pair_map.spec
    d = (nodes.pos[:, None] - nodes.pos[None]).norm(dim=-1)
    both = nodes.has_pos[:, None] & nodes.has_pos[None]
    centres = torch.linspace(0, spec.max_distance, spec.num_rbf)
    basis = torch.exp(-(((d[..., None] - centres) * spec.num_rbf / spec.max_distance) ** 2))
    m = (basis @ pair_map.distance.weight.T) * both[..., None]                         # [N, N, K]
    offset = nodes.index[None] - nodes.index[:, None]
    same = nodes.segment[:, None] == nodes.segment[None]
    bucket = torch.where(same, offset.clamp(-spec.max_seq_sep, spec.max_seq_sep) + spec.max_seq_sep,
                         2 * spec.max_seq_sep + 1)
    m = m + pair_map.separation.weight[bucket]
    return (m @ bias.mix.weight.T).permute(2, 0, 1)


def _random_nodes(lengths: list[int], seed: int = 0) -> tuple[NodeGeometry, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = sum(lengths)
    pos = torch.cumsum(torch.randn(n, 3, generator=g) * 2.2, 0)
    has = torch.rand(n, generator=g) > 0.1
    segment = (torch.rand(n, generator=g) > 0.7).long().cumsum(0) % 3
    batch = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    return NodeGeometry(torch.where(has[:, None], pos, 0.0), has, segment, torch.arange(n)), batch


LENGTHS = [3, 17, 5, 40, 41, 1, 100, 16, 18]
SPEC = BiasSpec(num_rbf=8, max_distance=16.0, max_seq_sep=6, channels=5)


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("chunk_elements", [None, 3000])
@pytest.mark.parametrize("cache_length", [0, 512])  # maps per chunk (long graphs) / once per forward (short ones)
def test_chunked_biased_attention_matches_a_dense_reference_with_gradients(groups, chunk_elements, cache_length):
    torch.manual_seed(0)
    nodes, batch = _random_nodes(LENGTHS)
    n = batch.numel()
    pair_map, bias = PairMap(SPEC), GeometricBias(H, SPEC)
    params = [pair_map.distance.weight, pair_map.separation.weight, bias.mix.weight]
    q = torch.randn(n, H, DH, requires_grad=True)
    k, v = (torch.randn(groups, n, H, DH, requires_grad=True) for _ in range(2))
    plan = V.length_buckets(batch, len(LENGTHS), H, 4 * 41 * 41 * 2)
    buckets = V.with_geometry(plan, nodes, pair_map, cache_length=cache_length)
    assert buckets.padded and buckets.singles
    assert all((m is None) == (cache_length == 0) for m in buckets.maps)
    w = torch.randn(n, H, DH)
    out = V.varlen_attention(q, k, v, buckets, chunk_elements=chunk_elements, bias=bias)
    (out * w).sum().backward()
    leaves = (q, k, v, *params)
    got = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    scores = _dense_bias(pair_map, bias, nodes).masked_fill(batch[:, None] != batch[None], float("-inf"))
    kk, vv = (t.reshape(groups * n, H, DH).transpose(0, 1) for t in (k, v))
    ref = F.scaled_dot_product_attention(q.transpose(0, 1), kk, vv, attn_mask=scores.repeat(1, 1, groups))
    ref = ref.transpose(0, 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    (ref * w).sum().backward()
    for i, (g, t) in enumerate(zip(got, leaves)):  # parameter gradients sum over thousands of pairs
        torch.testing.assert_close(g, t.grad, atol=1e-5 if i < 3 else 1e-4, rtol=1e-4 if i < 3 else 1e-3)
    assert all(g.abs().sum() > 0 for g in got[3:])


def test_edge_bias_is_the_pair_bias_on_the_edges_and_edge_attention_adds_it():
    torch.manual_seed(1)
    nodes, _ = _random_nodes([30])
    pair_map, bias = PairMap(SPEC), GeometricBias(H, SPEC)
    edge_index = torch.randint(0, 30, (2, 120))
    dense = _dense_bias(pair_map, bias, nodes)                               # [H, query i, key j]
    per_edge = bias.edges(pair_map.edges(edge_geometry(nodes, edge_index, SPEC)))  # edge j -> i
    torch.testing.assert_close(per_edge, dense[:, edge_index[1], edge_index[0]].T, atol=1e-5, rtol=1e-5)
    q, k, v = (torch.randn(30, H, DH) for _ in range(3))
    got = edge_attention(q, k, v, edge_index, bias=per_edge)
    src, dst = edge_index
    alpha = softmax((q[dst] * k[src]).sum(-1) / DH ** 0.5 + per_edge, dst, num_nodes=30)
    ref = torch.zeros(30, H, DH).index_add_(0, dst, alpha[..., None] * v[src])
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)


def test_long_graphs_compute_their_bias_per_chunk_within_the_budget_and_checkpointed(monkeypatch):
    calls: list[tuple[int, bool]] = []
    real = V.biased_attention

    def spy(q, k, v, mask, p, pair_bias, start, groups):
        calls.append((q.shape[2] * k.shape[2], torch.is_grad_enabled()))
        return real(q, k, v, mask, p, pair_bias, start, groups)

    monkeypatch.setattr(V, "biased_attention", spy)
    monkeypatch.setattr(V, "PAIR_CACHE_LENGTH", 100)  # 146 residues: a "long" graph here
    batch = batch_of([chains()[2]])
    n, budget = batch.num_nodes, 4 * 146 * 40
    model = ProteinAdapter(LEVELS, d_model=32, n_heads=H, n_blocks=1, attn_chunk_elements=budget).train()
    context = model.context(batch, n, batch.pos.device)
    assert context.maps == (None,)  # nothing L x L is stored for a long graph
    model(batch).sum().backward()
    per_pair = H + model.pair_map.elements_per_pair + 2 * H
    rows = budget // (n * per_pair)
    assert calls and all(c * per_pair <= budget for c, _ in calls) and max(c for c, _ in calls) == rows * n
    forward = -(-n // rows) * 4  # 2 self + 2 cross calls per chunk
    assert len(calls) == 2 * forward  # each recomputed in backward (checkpointed)


def test_short_graphs_share_one_map_per_forward_and_keep_their_scores(monkeypatch):
    built = []
    real = PairMap.pairs
    monkeypatch.setattr(PairMap, "pairs", lambda self, *a: built.append(1) or real(self, *a))
    batch = batch_of(proteins())
    model = ProteinAdapter(LEVELS, d_model=32, n_heads=H).train()
    model(batch).sum().backward()
    pieces = len(model.context(batch, batch.num_nodes, batch.pos.device).geometry)
    assert len(built) == 2 * pieces  # once per piece and forward (two forwards: the call above and context())


# ---- the adapter with the bias -------------------------------------------------------------------------------
@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("d_model", [64, 128])  # the demo's and the default config's width
def test_output_is_invariant_to_rigid_motions_centred_and_far(attention, d_model):
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, d_model=d_model, attention=attention).eval()
    with torch.no_grad():
        ref = model(batch_of(proteins()))
        for pose in ("centred", "far"):
            moved = batch_of(proteins(), pose)
            assert moved.pos.abs().max() > 900 if pose == "far" else moved.pos[moved.pos_mask].mean(0).abs().max() < 20
            torch.testing.assert_close(model(moved), ref, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("attention", ["global", "graph"])
def test_output_follows_a_non_rigid_change_of_one_protein_only(attention):
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, d_model=64, attention=attention).eval()
    batch = batch_of(proteins())
    bent = batch.clone()
    bent.pos = batch.pos.clone()
    bent.pos[30] += torch.tensor([2.5, 0.0, 0.0])  # one residue of the first protein moves 2.5 A
    with torch.no_grad():
        a, b = model(batch), model(bent)
    moved = (a - b).abs().amax(-1)
    assert moved[30] > 1e-3 and (moved[batch.batch == 0] > 1e-4).sum() > 1  # it and residues attending to it
    assert moved[batch.batch != 0].max() < 1e-5  # never across proteins
    without = ProteinAdapter(LEVELS, d_model=64, attention=attention, geometric_bias=False).eval()
    with torch.no_grad():
        assert torch.equal(without(batch), without(bent))  # coordinates reach the adapter only through the bias


@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("chunk", [None, 4 * 64 * 64])  # small: padded buckets, query chunks
def test_a_protein_alone_or_in_a_batch_gets_the_same_output(attention, chunk):
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, d_model=64, attention=attention, attn_chunk_elements=chunk).eval()
    graphs = [graph(p, seed=i) for i, p in enumerate(proteins() + [chains()[0], chains()[0]])]
    with torch.no_grad():
        together = model(Batch.from_data_list(graphs))
        offset = 0
        for g in graphs:
            alone = model(Batch.from_data_list([g]))
            torch.testing.assert_close(together[offset:offset + g.num_nodes], alone, atol=1e-5, rtol=1e-4)
            offset += g.num_nodes


@pytest.mark.parametrize("attention", ["global", "graph"])
@pytest.mark.parametrize("cls", [ProteinAdapter, SummedLevelsTransformer])
def test_every_parameter_gets_a_gradient_with_the_bias(attention, cls):
    torch.manual_seed(0)
    model = cls(LEVELS, d_model=64, attention=attention).train()
    biases = [n for n, _ in model.named_parameters() if "pair_map." in n or ".bias.mix" in n or "lin_edge" in n]
    assert len(biases) >= 3
    model(batch_of(proteins())).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead
    if attention == "global":  # every separation bucket is used by these proteins, the other-chain one too
        assert (model.pair_map.separation.weight.grad.abs().sum(1) > 0).all()


@pytest.mark.parametrize("attention", ["global", "graph"])
def test_evaluation_runs_the_same_attention_as_training(attention):
    """Training writes the biased scores out (the bias needs its gradient); without autograd SDPA's kernel takes the
    bias as a float mask. Same numbers (no dropout)."""
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, d_model=64, attention=attention, dropout=0.0).train()
    batch = batch_of(proteins())
    trained = model(batch)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(batch), trained.detach(), atol=1e-5, rtol=1e-4)


def test_the_bias_can_stay_out_of_the_cross_attention():
    torch.manual_seed(0)
    model = ProteinAdapter(LEVELS, d_model=64, bias_cross_attention=False).eval()
    assert all(block.cross.bias is None and block.attn[0].bias is not None for block in model.blocks)
    batch = batch_of(proteins())
    with torch.no_grad():
        ref = model(batch)
        torch.testing.assert_close(model(batch_of(proteins(), "far")), ref, atol=2e-4, rtol=1e-4)


def test_geometric_bias_false_is_the_adapter_without_it():
    levels, batch = LEVELS, batch_of(proteins())
    torch.manual_seed(0)
    plain = ProteinAdapter(levels, d_model=64, geometric_bias=False)
    torch.manual_seed(0)
    geo = ProteinAdapter(levels, d_model=64)
    extra = set(geo.state_dict()) - set(plain.state_dict())
    assert not set(plain.state_dict()) - set(geo.state_dict())
    assert extra and all(".bias." in k or k.startswith("pair_map.") for k in extra)
    assert "pos" in geo.required_batch_attributes and "pos" not in plain.required_batch_attributes
    del batch.pos
    plain.eval()(batch)  # needs no coordinates
    with pytest.raises(ConfigError, match="pos"):
        geo(batch)
    with pytest.raises(ConfigError, match="bias_num_rbf"):
        ProteinAdapter(levels, bias_num_rbf=0)


FIXTURE = __import__("pathlib").Path(__file__).parent / "data" / "adapter_before_geometric_bias.pt"


@pytest.mark.parametrize("attention", ["global", "graph"])
def test_geometric_bias_false_loads_and_reproduces_a_model_saved_before_the_bias_existed(attention):
    """tests/nn/data/adapter_before_geometric_bias.pt: ProteinAdapter(levels, d_model=8, n_heads=2, n_blocks=1)
    built with torch.manual_seed(0) by the code before the geometric bias, its state_dict and its eval output."""
    saved = torch.load(FIXTURE, weights_only=True)
    inputs, old = saved["inputs"], saved[attention]
    data = Batch(**inputs)
    torch.manual_seed(0)
    model = ProteinAdapter(saved["levels"], d_model=8, n_heads=2, n_blocks=1, attention=attention,
                           geometric_bias=False).eval()
    for name, tensor in model.state_dict().items():  # same parameters, same initial values for the same seed
        torch.testing.assert_close(tensor, old["state_dict"][name], rtol=0, atol=0)
    model.load_state_dict(old["state_dict"], strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(data), old["output"], rtol=0, atol=1e-6)
    with pytest.raises(RuntimeError, match="Missing key"):  # the default builds the bias, which it lacks
        ProteinAdapter(saved["levels"], d_model=8, n_heads=2, n_blocks=1, attention=attention).load_state_dict(
            old["state_dict"])
