"""MultiScalePredictor on real residue graphs: every conv and pooling by name, merges, readouts, batching, order."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from pa_geo.errors import ConfigError
from pa_geo.nn.convs import available_convs, get_conv
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.nn.pooling import available_poolings
from pa_geo.nn.predictor import MultiScalePredictor
from tests.helpers.nn_graphs import atom_graph, residue_batch, residue_graph

D, H = 32, 32
CONVS = ["e3nn", "gat", "gatv2", "gcn", "gin", "graphconv", "sage", "transformer"]


def test_conv_registry():
    assert available_convs() == CONVS
    with pytest.raises(ConfigError, match="unknown conv 'cheb'.*gatv2"):
        get_conv("cheb", D, H)
    with pytest.raises(ConfigError, match="not divisible"):
        get_conv("gat", D, 30, heads=4)


@pytest.mark.parametrize("conv", CONVS)
def test_every_conv_runs_with_edge_attr(conv):
    torch.manual_seed(0)
    batch = residue_batch(chains=(0, 1))
    model = MultiScalePredictor(D, H, num_scales=2, conv=conv, pool="topk", edge_dim=2)
    x = batch.x.clone().requires_grad_(True)
    out = model(x, batch)
    assert isinstance(out, EncoderOutput)
    assert out.graph.shape == (2, model.graph_dim) == (2, 2 * H)
    assert out.node.shape == (batch.num_nodes, model.node_dim) and torch.equal(out.batch, batch.batch)
    (out.graph.sum() + out.node.pow(2).mean()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    grads = [p.grad for p in model.convs[1].parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)  # the second scale is trained too


@pytest.mark.parametrize("pool", ["asap", "edge", "graclus", "none", "sag", "topk", "voxel"])
def test_every_pooling_runs_three_scales(pool):
    assert pool in available_poolings()
    torch.manual_seed(0)
    batch = residue_batch(chains=(0, 1))
    kwargs = {"size": [6.0, 12.0, 24.0], "ratio": 0.5}
    model = MultiScalePredictor(D, H, num_scales=3, conv="gcn", pool=pool, pool_kwargs=kwargs)
    out = model(batch.x, batch)
    assert out.graph.shape == (2, 3 * H) and out.node.shape == (batch.num_nodes, 3 * H)
    out.graph.sum().backward()


def test_atom_graph_runs():
    torch.manual_seed(0)
    batch = atom_graph(D)
    model = MultiScalePredictor(D, H, num_scales=3, conv="gat", pool="topk", edge_dim=2, readout="attention")
    out = model(batch.x, batch)
    assert out.graph.shape == (1, 3 * H) and out.node.shape == (600, 3 * H)


@pytest.mark.parametrize("merge,readout,graph_dim", [("concat", "mean", 3 * H), ("sum", "max", H),
                                                     ("attention", "sum", H), ("last", "attention", H)])
def test_merge_dims(merge, readout, graph_dim):
    batch = residue_batch(chains=(0, 1))
    model = MultiScalePredictor(D, H, num_scales=3, merge=merge, readout=readout)
    out = model(batch.x, batch)
    assert model.graph_dim == model.node_dim == graph_dim
    assert out.graph.shape == (2, graph_dim) and out.node.shape == (batch.num_nodes, graph_dim)


def test_global_pooling_only_ablation_is_a_mean_of_conv_features():
    batch = residue_batch(chains=(0, 1))
    model = MultiScalePredictor(D, H, num_scales=1, pool="none", readout="mean", merge="concat").eval()
    out = model(batch.x, batch)
    # node = conv features + the graph's readout, so the node mean is the conv mean plus the readout
    conv_mean = (out.node - out.graph[batch.batch])[batch.batch == 1].mean(dim=0)
    assert torch.allclose(out.graph[1], conv_mean, atol=1e-5)


def test_last_merge_ignores_earlier_readouts():
    batch = residue_batch(chains=(0,))
    torch.manual_seed(0)
    model = MultiScalePredictor(D, H, num_scales=2, merge="last", pool="topk").eval()
    out = model(batch.x, batch)
    model.readouts[0].kind = "max"  # changing the first scale's readout must not move the graph vector
    assert torch.allclose(model(batch.x, batch).graph, out.graph)


def test_lifted_node_features_carry_coarse_context():
    """Nodes in one voxel share the lifted coarse-scale block of the node output."""
    batch = residue_batch(chains=(1,))
    model = MultiScalePredictor(D, H, num_scales=2, pool="voxel", pool_kwargs={"size": [10.0, 20.0]}).eval()
    node = model(batch.x, batch).node
    coarse = node[:, H:]
    assert torch.unique(coarse, dim=0).size(0) < batch.num_nodes / 2


def test_config_errors():
    batch = residue_batch(chains=(0,))
    with pytest.raises(ConfigError, match="merge"):
        MultiScalePredictor(D, merge="mean")
    with pytest.raises(ConfigError, match="readout"):
        MultiScalePredictor(D, readout="median")
    with pytest.raises(ConfigError, match="pool_kwargs"):
        MultiScalePredictor(D, num_scales=3, pool="voxel", pool_kwargs={"size": [6.0, 12.0]})
    with pytest.raises(ConfigError, match="edge_attr"):
        MultiScalePredictor(D, H, edge_dim=5)(batch.x, batch)
    with pytest.raises(ConfigError, match=r"\[N, 32\]"):
        MultiScalePredictor(D, H)(batch.x[:, :8], batch)


@pytest.mark.parametrize("pool", ["asap", "edge", "graclus", "none", "sag", "topk", "voxel"])
def test_prediction_same_alone_and_in_batch(pool):
    torch.manual_seed(0)
    model = MultiScalePredictor(D, H, num_scales=3, conv="gat", pool=pool, edge_dim=2,
                                pool_kwargs={"size": [6.0, 12.0, 24.0]}).eval()
    alone = Batch.from_data_list([residue_graph(1, D)])
    batch = Batch.from_data_list([residue_graph(c, D) for c in (0, 1)])
    with torch.no_grad():
        a, b = model(alone.x, alone), model(batch.x, batch)
    assert torch.allclose(a.graph[0], b.graph[1], atol=1e-4)
    assert torch.allclose(a.node, b.node[batch.batch == 1], atol=1e-4)


@pytest.mark.parametrize("pool,readout", [("none", "mean"), ("none", "attention"), ("voxel", "max"),
                                          ("voxel", "sum")])
def test_graph_output_invariant_to_node_order(pool, readout):
    """Order-free operators only: ``none`` and ``voxel`` (top-k / SAG / ASAP break score ties by index; graclus
    and edge contraction match greedily in node order)."""
    torch.manual_seed(0)
    model = MultiScalePredictor(D, H, num_scales=2, conv="sage", pool=pool, readout=readout,
                                pool_kwargs={"size": [8.0, 16.0]}).eval()
    data = residue_graph(1, D)
    perm = torch.randperm(data.num_nodes, generator=torch.Generator().manual_seed(3))
    inv = torch.argsort(perm)
    shuffled = data.clone()
    shuffled.x, shuffled.pos, shuffled.edge_index = data.x[perm], data.pos[perm], inv[data.edge_index]
    with torch.no_grad():
        a = model(data.x, Batch.from_data_list([data]))
        b = model(shuffled.x, Batch.from_data_list([shuffled]))
    assert torch.allclose(a.graph, b.graph, atol=1e-4)
    assert torch.allclose(a.node[perm], b.node, atol=1e-4)


@pytest.mark.parametrize("pool", ["topk", "sag", "asap"])
def test_node_output_alone_reaches_every_parameter(pool):
    """Node-level tasks use only ``node``: every pooling / readout parameter must still get a gradient
    (DDP refuses parameters without one)."""
    torch.manual_seed(0)
    batch = residue_batch(chains=(0, 1))
    model = MultiScalePredictor(D, H, num_scales=3, pool=pool, readout="attention")
    model(batch.x, batch).node.pow(2).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, missing
