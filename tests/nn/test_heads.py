"""Task heads: shapes, contact-pair rules, symmetry of the pair head, antisymmetry of the mutation head, widths bound
from the encoder and the task."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch, Data

from pa_geo.errors import ConfigError, DatasetError
from pa_geo.nn.heads import (ContactHead, GraphHead, LigandHead, MutationHead, NodeHead, ProteinPairHead,
                             contact_pairs)
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.nn.predictor import MultiScalePredictor
from tests.helpers.nn_graphs import atom_graph, residue_batch

D = 32


@pytest.fixture(scope="module")
def batch() -> Batch:
    return residue_batch(chains=(0, 1, 3), dim=D)


@pytest.fixture(scope="module")
def enc(batch) -> EncoderOutput:
    torch.manual_seed(0)
    with torch.no_grad():
        return MultiScalePredictor(D, 16, num_scales=2).eval()(batch.x, batch)


def other(enc: EncoderOutput, seed: int) -> EncoderOutput:
    g = torch.Generator().manual_seed(seed)
    return EncoderOutput(torch.randn(enc.graph.shape, generator=g), torch.randn(enc.node.shape, generator=g),
                         enc.batch)


def test_graph_and_node_heads(enc, batch):
    probe, deep = GraphHead(32, 5), GraphHead(32, 5, hidden_dim=64, dropout=0.1)
    assert probe(enc).shape == deep(enc).shape == (3, 5)
    assert sum(p.numel() for p in probe.parameters()) == 32 * 5 + 5
    assert NodeHead(32, 3)(enc).shape == (batch.num_nodes, 3)
    assert NodeHead(32, 8, hidden_dim=16)(enc).shape == (batch.num_nodes, 8)


def test_contact_pairs_respect_separation_and_graphs(enc, batch):
    head = ContactHead(32, hidden_dim=16, min_separation=6)
    logits, pairs = head(enc)
    sizes = torch.bincount(batch.batch).tolist()
    assert pairs.size(1) == sum((n - 6) * (n - 5) // 2 for n in sizes) == logits.numel()
    assert bool((pairs[1] - pairs[0] >= 6).all())
    assert torch.equal(batch.batch[pairs[0]], batch.batch[pairs[1]])
    # All admissible pairs of the first graph are there.
    first = pairs[:, batch.batch[pairs[0]] == 0]
    assert {(i, j) for i, j in first.T.tolist()} == {(i, j) for i in range(sizes[0]) for j in range(i + 6, sizes[0])}
    # Pair features are symmetric: scoring (j, i) gives the same logit.
    flipped, _ = head(enc, pair_index=pairs[:, :100].flip(0))
    assert torch.allclose(flipped, logits[:100], atol=1e-6)
    logits.sum().backward()
    assert contact_pairs(torch.tensor([0, 5]), 6).shape == (2, 0)  # one graph shorter than the separation
    assert torch.equal(contact_pairs(batch.ptr, 6), pairs)  # offsets from Batch.ptr, same pairs


def test_pair_head_symmetric(enc):
    head = ProteinPairHead(32, 2, hidden_dim=16)
    b = other(enc, 1)
    ab, ba = head(enc, b), head(b, enc)
    assert ab.shape == (3, 2) and torch.allclose(ab, ba, atol=1e-6)
    with pytest.raises(DatasetError):
        head(enc, EncoderOutput(enc.graph[:2], enc.node, enc.batch))


def test_mutation_head(enc):
    mutant = other(enc, 2)
    plain = MutationHead(32, 1, hidden_dim=16)
    assert plain(enc, mutant).shape == (3, 1)
    anti = MutationHead(32, 1, hidden_dim=16, antisymmetric=True)
    assert torch.allclose(anti(enc, mutant), -anti(mutant, enc), atol=1e-6)
    assert torch.allclose(anti(enc, enc), torch.zeros(3, 1))
    assert not torch.allclose(plain(enc, mutant), -plain(mutant, enc))


def ligand_batch(num: int) -> Batch:
    """Small real atom subgraphs (25 atoms each, radius 4.5 edges) standing in for ligands."""
    atoms = atom_graph(8)
    graphs = []
    for k in range(num):
        keep = torch.arange(25) + 40 * k
        mask = torch.isin(atoms.edge_index, keep).all(dim=0)
        ei = atoms.edge_index[:, mask] - keep[0]
        graphs.append(Data(element=atoms.element[keep], edge_index=ei, edge_attr=atoms.edge_attr[mask],
                           num_nodes=25))
    return Batch.from_data_list(graphs)


def test_ligand_head(enc):
    ligands = ligand_batch(3)
    head = LigandHead(32, 1, ligand_hidden=16, num_elements=4, hidden_dim=16)
    out = head(enc, ligands)
    assert out.shape == (3, 1)
    out.sum().backward()
    assert head.embed.weight.grad.abs().sum() > 0
    gine = LigandHead(32, 2, ligand_hidden=16, num_elements=4, ligand_edge_dim=2)
    assert gine(enc, ligands).shape == (3, 2)
    # The ligand matters: a different ligand changes the prediction.
    swapped = Batch.from_data_list(ligands.to_data_list()[::-1])
    assert not torch.allclose(head(enc, swapped), head(enc, ligands))
    with pytest.raises(DatasetError, match="2 ligands"):
        head(enc, ligand_batch(2))
    with pytest.raises(DatasetError, match="element"):
        LigandHead(32, 1, num_elements=2)(enc, ligands)


def test_heads_bind_to_encoder_and_task_widths(enc):
    head = GraphHead(hidden_dim=8)
    assert not head.bound and sum(p.numel() for p in head.parameters()) == 0
    with pytest.raises(ConfigError, match="no widths yet"):
        head(enc)
    head.bind(32, 5)
    assert head.bound and head(enc).shape == (3, 5)
    assert sum(p.numel() for p in head.parameters()) == 32 * 8 + 8 + 8 * 5 + 5
    head.bind(32, 5)  # binding again with the same widths keeps the weights
    with pytest.raises(ConfigError, match="in_dim=32 but the encoder's graph_dim is 48"):
        GraphHead(32, 5).bind(48, 5, where="task 't'")
    with pytest.raises(ConfigError, match=r"task 't': NodeHead out_dim=4 but the task has 3 output\(s\)"):
        NodeHead(out_dim=4).bind(32, 3, where="task 't'")
    with pytest.raises(ConfigError, match="ContactHead always gives 1 output"):
        ContactHead().bind(32, 2)
    contact = ContactHead(hidden_dim=16)
    contact.bind(32, 1)
    assert contact(enc)[0].ndim == 1
    for cls in (ProteinPairHead, MutationHead):
        h = cls()
        h.bind(32, 2)
        assert h(enc, other(enc, 3)).shape == (3, 2)
    ligand = LigandHead(num_elements=4)
    ligand.bind(32, 2)
    assert ligand(enc, ligand_batch(3)).shape == (3, 2)


def test_mlp_is_pyg_and_gradients_reach_every_weight(enc):
    from torch_geometric.nn import MLP

    head = NodeHead(32, 3, hidden_dim=16, dropout=0.1)
    assert isinstance(head.net, MLP)
    head(enc).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
