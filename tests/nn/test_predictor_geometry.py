"""MultiScalePredictor reading geometry: every conv that takes edge features, on residue graphs built by
pa_geo.graphs.residue_graph (full backbones, CA traces, sequence-only proteins) with the residue graph's whole
edge_attr (distance RBF, sequence separation, same chain, direction in the local frame): it runs and trains at every
scale, it reads the direction, its output does not move with the coordinates' pose, and an edge with an end
without position gets no distance features at any scale."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from pa_geo.graphs import EDGE_ATTR_LAYOUT, EDGE_DIM, residue_graph
from pa_geo.io.protein import Protein
from pa_geo.nn.predictor import MultiScalePredictor
from tests.helpers.proteins import structuredb_chains

D = H = 32
EDGE_CONVS = ["transformer", "gin", "gat", "gatv2", "e3nn"]


def _ca_trace(p: Protein) -> Protein:
    bb = p.backbone.copy()
    bb[:, [0, 2, 3]] = np.nan
    return Protein(p.id + "ca", p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks)


def _posed(p: Protein, far: bool) -> Protein:
    q, r = np.linalg.qr(np.random.default_rng(5).normal(size=(3, 3)))
    rot = q * np.sign(np.diag(r))
    rot[:, 0] *= np.sign(np.linalg.det(rot))
    bb = p.backbone.astype(np.float64)
    bb = (bb - np.nanmean(bb[:, 1], 0)) @ rot.T + (np.array([1000.0, 1000.0, -1000.0]) if far else 0.0)
    return Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb.astype(np.float32),
                   p.chain_breaks)


def _batch(proteins: list[Protein]) -> Batch:
    graphs = []
    for i, p in enumerate(proteins):
        g = residue_graph(p, radius=10.0)
        g.x = torch.randn(g.num_nodes, D, generator=torch.Generator().manual_seed(i))
        graphs.append(g)
    return Batch.from_data_list(graphs)


def _proteins() -> list[Protein]:
    a, b, c = structuredb_chains()  # 20, 77, 146 residues
    return [c, _ca_trace(b), a, Protein.from_sequence("seq_only", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ")]


@pytest.mark.parametrize("pool", ["topk", "graclus"])
@pytest.mark.parametrize("conv", EDGE_CONVS + ["gcn"])
def test_every_conv_trains_at_every_scale_on_backbones_ca_traces_and_sequence_only(conv, pool):
    torch.manual_seed(0)
    batch = _batch(_proteins())
    model = MultiScalePredictor(D, H, num_scales=3, conv=conv, pool=pool, edge_dim=EDGE_DIM).train()
    out = model(batch.x, batch)
    assert torch.isfinite(out.node).all() and torch.isfinite(out.graph).all()
    (out.graph.square().mean() + out.node.square().mean()).backward()
    for s, layer in enumerate(model.convs):
        grads = [p.grad for p in layer.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), (conv, s)
        assert any(g.abs().sum() > 0 for g in grads), (conv, s)
    assert model.convs[0].uses_edge_attr == (conv != "gcn")


@pytest.mark.parametrize("conv", EDGE_CONVS)
def test_edge_convs_read_the_direction_in_the_local_frame(conv):
    torch.manual_seed(0)
    batch = _batch(_proteins()[:2])
    model = MultiScalePredictor(D, H, num_scales=2, conv=conv, pool="topk", edge_dim=EDGE_DIM).eval()
    turned = batch.clone()
    turned.edge_attr = batch.edge_attr.clone()
    turned.edge_attr[:, EDGE_ATTR_LAYOUT["direction"]] *= -1
    assert batch.edge_attr[:, EDGE_ATTR_LAYOUT["direction"]].abs().sum() > 0
    with torch.no_grad():
        assert not torch.allclose(model(batch.x, batch).node, model(turned.x, turned).node, atol=1e-5)


@pytest.mark.parametrize("conv", ["transformer", "gin"])
@pytest.mark.parametrize("pool", ["topk", "graclus"])
def test_output_does_not_depend_on_the_pose_centred_or_far(conv, pool):
    torch.manual_seed(0)
    model = MultiScalePredictor(D, H, num_scales=3, conv=conv, pool=pool, edge_dim=EDGE_DIM).eval()
    proteins = _proteins()
    with torch.no_grad():
        ref = model((b := _batch(proteins)).x, b)
        for far in (False, True):
            moved = _batch([_posed(p, far) if p.has_structure else p for p in proteins])
            out = model(moved.x, moved)
            torch.testing.assert_close(out.node, ref.node, atol=2e-4, rtol=1e-4)
            torch.testing.assert_close(out.graph, ref.graph, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("pool", ["topk", "graclus"])
def test_edges_without_positions_get_no_distance_features_at_any_scale(monkeypatch, pool):
    model = MultiScalePredictor(D, H, num_scales=3, conv="transformer", pool=pool, edge_dim=EDGE_DIM).eval()
    seen = []
    real = model._edge_features
    monkeypatch.setattr(model, "_edge_features", lambda *a: seen.append(real(*a)) or seen[-1])
    for protein, has_distances in ((Protein.from_sequence("a", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"), False),
                                   (structuredb_chains()[1], True)):
        seen.clear()
        batch = _batch([protein])
        with torch.no_grad():
            model(batch.x, batch)
        assert len(seen) == 3
        assert [bool(f[:, :model.num_rbf].abs().sum() > 0) for f in seen if len(f)] == [has_distances] * sum(
            len(f) > 0 for f in seen)


@pytest.mark.parametrize("conv", ["transformer", "gin"])
def test_a_config_selects_a_geometric_conv_with_the_residue_graphs_edge_features(conv, tmp_path, monkeypatch):
    """``conv`` + ``edge_dim`` from the command line on the demo's structure task: built by the CLI, one step."""
    import os
    from pathlib import Path

    import pa_geo.demo  # noqa: F401 - the demo configs name demo tasks
    from pa_geo.demo.data import DATA_DIR
    from pa_geo.graphs.schema import embedding_field
    from tests.helpers.caches import fill_random_cache
    from pa_geo.train.cli import build_cli

    configs = Path(__file__).resolve().parents[2] / "configs"
    monkeypatch.chdir(tmp_path)
    predictor = "--model.encoder.init_args.predictor.init_args."
    cli = build_cli(["--config", str(configs / "demo_ss8.yaml"), predictor + "conv", conv,
                     predictor + "edge_dim", str(EDGE_DIM), "--data.max_records", "4", "--data.num_workers", "0",
                     "--trainer.accelerator", "cpu", "--trainer.devices", "1"], run=False)
    dm, model = cli.datamodule, cli.model
    for root in dm.roots.values():
        if not root.exists():
            os.symlink(DATA_DIR, root)
    levels = model.encoder.adapter.levels
    for entry in dm.embeddings:
        dims = {int(layer): levels[embedding_field(entry["backbone"], layer)] for layer in entry["layers"]}
        fill_random_cache(entry["cache"], entry["backbone"], dims, dm.proteins())
    predictor_module = model.encoder.predictor
    assert predictor_module.convs[0].name == conv and predictor_module.convs[0].uses_edge_attr
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    loss, _ = model._task_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in predictor_module.convs[0].parameters())
