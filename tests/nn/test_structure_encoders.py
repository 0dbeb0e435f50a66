"""GearNet-Edge-style and GVP-GNN encoders on real residue graphs (pa_geo.graphs.residue_graph of real StructureDB
chains, tests/data/nn_real_chains.npz), with the demo's two embedding levels as frozen fields."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

pytest.importorskip("torch_cluster")

from pa_geo.errors import ConfigError  # noqa: E402
from pa_geo.graphs import residue_graph  # noqa: E402
from pa_geo.io.protein import Protein  # noqa: E402
from pa_geo.nn.structure_encoders import GearNetEncoder, GVPEncoder  # noqa: E402
from pa_geo.nn.structure_encoders.gvp_features import dihedral_features  # noqa: E402
from pa_geo.nn.structure_encoders.gvp_layers import GVPConvLayer  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "nn_real_chains.npz"
LEVELS = {"emb_near_8": 16, "emb_proteinmpnn_3": 8}  # the demo's two levels (narrower)
CROP = 70  # residues per chain: real geometry, fast tests


@lru_cache(maxsize=None)
def _chain(i: int, crop: int | None = CROP) -> Protein:
    d = np.load(DATA)
    start = int(np.sum(d["lengths"][:i]))
    L = int(d["lengths"][i]) if crop is None else crop
    bb = d["coords"][start:start + L, :4].astype(np.float32)
    breaks = np.zeros(L, bool)
    breaks[0] = True
    return Protein(str(d["ids"][i]), str(d["seqs"][i])[:L], np.full(L, "A", dtype=object), np.arange(L) + 1,
                   np.full(L, "", dtype=object), bb, breaks, source=str(DATA.name))


def _graph(protein: Protein, seed: int = 0) -> Data:
    g = residue_graph(protein, radius=10.0)
    gen = torch.Generator().manual_seed(seed)
    for name, dim in LEVELS.items():
        g[name] = torch.randn(g.num_nodes, dim, generator=gen)
    return g


def _batch(chains: tuple[int, ...] = (0, 1, 2), crop: int | None = CROP) -> Batch:
    return Batch.from_data_list([_graph(_chain(c, crop), seed=c) for c in chains])


def _moved(batch: Batch, rot: torch.Tensor, shift: torch.Tensor) -> Batch:
    out = batch.clone()
    out.pos = torch.where(out.pos_mask[:, None], batch.pos @ rot.T + shift, batch.pos)
    out.backbone = batch.backbone @ rot.T + shift  # NaN stays NaN
    return out


def _rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q.float()


ENCODERS = {  # the defaults users run, plus GearNet-Edge's edge message passing (off by default: CPU cost)
    "gearnet": lambda levels: GearNetEncoder(sequence_levels=levels),
    "gearnet_edge_mp": lambda levels: GearNetEncoder(hidden_dim=32, num_layers=3, sequence_levels=levels,
                                                     edge_message_passing=True),
    "gvp": lambda levels: GVPEncoder(sequence_levels=levels),
}


@pytest.mark.parametrize("levels", [None, LEVELS], ids=["structure_only", "serial_fusion"])
@pytest.mark.parametrize("name", list(ENCODERS))
def test_forward_backward_reaches_every_parameter(name, levels):
    torch.manual_seed(0)
    enc = ENCODERS[name](levels)
    batch = _batch()
    out = enc(batch)
    assert out.node.shape == (batch.num_nodes, enc.node_dim) and out.graph.shape == (3, enc.graph_dim)
    assert torch.equal(out.batch, batch.batch)
    (out.node.square().mean() + out.graph.square().mean()).backward()
    dead = [n for n, p in enc.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters())
    if levels:  # series fusion: the frozen fields lead the node output and feed the structure encoder
        torch.testing.assert_close(out.node[:, :24], torch.cat([batch[n] for n in LEVELS], dim=-1))
        assert set(enc.required_batch_attributes) >= set(LEVELS)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_outputs_are_invariant_to_rotation_and_translation_and_follow_coordinates(name):
    torch.manual_seed(0)
    enc = ENCODERS[name](LEVELS).eval()
    batch = _batch()
    with torch.no_grad():
        ref = enc(batch)
        moved = enc(_moved(batch, _rotation(1), torch.tensor([12.0, -30.0, 7.5])))
        torch.testing.assert_close(moved.node, ref.node, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(moved.graph, ref.graph, rtol=1e-4, atol=1e-4)
        bent = batch.clone()  # one residue's backbone moves 1.5 A (N, CA, C, O and its position together)
        bent.backbone = batch.backbone.clone()
        bent.backbone[40] += torch.tensor([1.5, 0.0, 0.0])
        bent.pos = batch.pos.clone()
        bent.pos[40] = bent.backbone[40, 1]
        changed = (enc(bent).node - ref.node).abs().amax(-1)
    scale = ref.node.abs().max()  # other proteins: unchanged up to float summation order
    assert changed[40] > 1e-2 * scale and changed[batch.batch != 0].max() < 1e-5 * scale


@pytest.mark.parametrize("name", list(ENCODERS))
def test_a_protein_alone_or_in_a_batch_gets_the_same_outputs(name):
    torch.manual_seed(0)
    enc = ENCODERS[name](LEVELS).eval()
    with torch.no_grad():
        alone = enc(_batch((1,)))
        together = enc(_batch((0, 1, 2)))
    rows = slice(CROP, 2 * CROP)
    torch.testing.assert_close(together.node[rows], alone.node, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together.graph[1:2], alone.graph, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_missing_atoms_and_positions_give_finite_outputs_and_gradients(name):
    torch.manual_seed(0)
    p = _chain(2)
    bb = p.backbone.copy()
    bb[10] = np.nan  # a residue without any backbone atom: pos_mask False
    bb[20, 0] = np.nan  # no N: no phi / side-chain direction
    bb[30, 3] = np.nan  # no O
    bb[31, 1] = np.nan  # no CA: position from the other backbone atoms
    broken = Protein(p.id, p.sequence, p.chain_ids, p.residue_numbers, p.insertion_codes, bb, p.chain_breaks)
    batch = Batch.from_data_list([_graph(_chain(0)), _graph(broken)])
    assert not batch.pos_mask[CROP + 10] and batch.pos_mask[CROP + 31]
    enc = ENCODERS[name](LEVELS)
    out = enc(batch)
    assert torch.isfinite(out.node).all() and torch.isfinite(out.graph).all()
    out.graph.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_sequence_only_and_one_residue_proteins_run(name):
    torch.manual_seed(0)
    graphs = [_graph(Protein.from_sequence("seq_only", "MKTAYIAKQR")), _graph(_chain(0, crop=1)), _graph(_chain(1))]
    batch = Batch.from_data_list(graphs)
    assert not batch.pos_mask[:10].any()
    enc = ENCODERS[name](LEVELS)
    out = enc(batch)
    assert out.graph.shape == (3, enc.graph_dim) and torch.isfinite(out.node).all()
    out.graph.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", list(ENCODERS))
def test_a_missing_field_is_a_one_line_config_error(name):
    batch = _batch((0,))
    enc = ENCODERS[name]({"emb_esm1b_33": 16})
    with pytest.raises(ConfigError, match="emb_esm1b_33") as err:
        enc(batch)
    assert "\n" not in str(err.value)
    del batch.chain_index
    with pytest.raises(ConfigError, match="chain_index"):
        ENCODERS[name](None)(batch)
    with pytest.raises(ConfigError, match="emb_near_8"):  # wrong width
        ENCODERS[name]({"emb_near_8": 99})(_batch((0,)))


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="readout"):
        GearNetEncoder(readout="max")
    with pytest.raises(ConfigError, match="sequence_levels"):
        GVPEncoder(sequence_levels={})
    with pytest.raises(ConfigError, match="num_layers"):
        GearNetEncoder(num_layers=0)


def test_gearnet_sizes_and_sum_readout():
    enc = GearNetEncoder(hidden_dim=8, num_layers=3, edge_message_passing=False).eval()
    assert enc.node_dim == enc.graph_dim == 24 and enc.required_batch_attributes[:2] == ["pos", "pos_mask"]
    batch = _batch((0, 1))
    with torch.no_grad():
        out = enc(batch)
    torch.testing.assert_close(out.graph[0], out.node[:CROP].sum(0))
    fused = GearNetEncoder(hidden_dim=8, num_layers=2, sequence_levels=LEVELS, edge_message_passing=True)
    assert fused.node_dim == 16 + 24 and fused.embed is not None  # keeps the first edge layer narrow
    assert GearNetEncoder(sequence_levels=LEVELS, edge_message_passing=False).embed is None  # ESM-GearNet: raw input


def test_gvp_conv_layer_matches_its_concatenated_form_and_rotates_vectors_with_the_input():
    torch.manual_seed(0)
    layer = GVPConvLayer((8, 4), (5, 1), dropout=0.0).eval()
    s, v = torch.randn(30, 8), torch.randn(30, 3, 4)  # vectors channels-last [N, xyz, C]
    edge_index = torch.randint(0, 30, (2, 120))
    es, ev = torch.randn(120, 5), torch.randn(120, 3, 1)
    src, dst = edge_index
    with torch.no_grad():  # the split first message equals the GVP on [h_j, e, h_i] (gvp-pytorch's form)
        split = layer._first_message((s, v), edge_index, (es, ev))
        whole = layer.message[0]((torch.cat([s[src], es, s[dst]], -1), torch.cat([v[src], ev, v[dst]], -1)))
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-5)
    rot = _rotation(2)
    with torch.no_grad():
        s1, v1 = layer((s, v), edge_index, (es, ev))
        s2, v2 = layer((s, rot @ v), edge_index, (es, rot @ ev))
    torch.testing.assert_close(s2, s1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(v2, rot @ v1, rtol=1e-4, atol=1e-5)
    assert v1.abs().sum() > 0 and (s1 - layer((s, v.flip(-1)), edge_index, (es, ev))[0]).abs().max() > 1e-3


def test_gvp_dihedrals_match_biotite_phi_psi_omega():
    struc = pytest.importorskip("biotite.structure")
    p = _chain(1, crop=40)
    L = len(p)
    atoms = struc.AtomArray(3 * L)
    atoms.coord = p.backbone[:, :3].reshape(-1, 3)
    atoms.atom_name = np.tile(["N", "CA", "C"], L)
    atoms.res_id = np.repeat(np.arange(1, L + 1), 3)
    atoms.res_name = np.full(3 * L, "ALA")
    atoms.element = np.tile(["N", "C", "C"], L)
    atoms.chain_id = np.full(3 * L, "A")
    phi, psi, omega = struc.dihedral_backbone(atoms)
    feats = dihedral_features(torch.from_numpy(p.backbone), torch.zeros(L, dtype=torch.long)).double()
    for col, ref in enumerate((phi, psi, omega)):
        ok = np.isfinite(ref)
        torch.testing.assert_close(feats[ok, col], torch.from_numpy(np.cos(ref[ok])).double(), rtol=0, atol=1e-4)
        torch.testing.assert_close(feats[ok, 3 + col], torch.from_numpy(np.sin(ref[ok])).double(), rtol=0, atol=1e-4)
        assert feats[~ok, col].abs().sum() == 0
