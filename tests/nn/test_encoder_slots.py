"""The baselines that replace adapter AND predictor sit in AdapterEncoder's adapter slot (predictor=None), so a config
can swap them in by name and the task's levels carry over; structure encoders pick the sequence levels themselves
(``sequence_levels="sequence"``, by the backbone registry's level of each field)."""
from __future__ import annotations

import pytest
import torch
from test_structure_encoders import _batch  # real chains as residue graphs with the levels below

from pa_geo.errors import ConfigError
from pa_geo.nn import AdapterEncoder, MeanEmbeddingEncoder
from pa_geo.nn.structure_encoders import GearNetEncoder, GVPEncoder
from pa_geo.nn.structure_encoders.inputs import field_level, resolve_sequence_levels

LEVELS = {"emb_near_8": 16, "emb_proteinmpnn_3": 8}  # as in test_structure_encoders: one sequence, one structure


@pytest.mark.parametrize("field, level", [("emb_near_8", "sequence"), ("emb_esm1b_33", "sequence"),
                                          ("emb_proteinmpnn_3", "structure"), ("emb_proteinmpnn_ca_3", "structure"),
                                          ("emb_esm_if1_3", "structure"), ("emb_onehot_0", "sequence")])
def test_field_level_reads_the_backbone_registry(field, level):
    assert field_level(field) == level


def test_unknown_fields_and_no_sequence_level_are_one_line_errors():
    with pytest.raises(ConfigError, match="emb_nosuch_3"):
        field_level("emb_nosuch_3")
    with pytest.raises(ConfigError, match="hold no sequence"):
        resolve_sequence_levels({"emb_proteinmpnn_ca_3": 128}, "sequence", "GearNetEncoder")
    with pytest.raises(ConfigError, match="sequence_levels must be"):
        resolve_sequence_levels(LEVELS, "structure", "GVPEncoder")
    assert resolve_sequence_levels(LEVELS, None, "x") is None
    assert resolve_sequence_levels(None, {"emb_near_8": 16}, "x") == {"emb_near_8": 16}


@pytest.mark.parametrize("cls", [GearNetEncoder, GVPEncoder])
def test_sequence_levels_from_the_task_levels_read_only_the_sequence_field(cls):
    torch.manual_seed(0)
    kw = dict(hidden_dim=16, num_layers=2) if cls is GearNetEncoder else dict(node_scalars=8, node_vectors=2)
    enc = AdapterEncoder(cls(levels=LEVELS, sequence_levels="sequence", **kw)).eval()
    assert enc.adapter.sequence_levels == {"emb_near_8": 16} and enc.predictor is None
    assert "emb_proteinmpnn_3" not in enc.required_batch_attributes
    batch = _batch((0, 1))
    ref = enc(batch)
    assert ref.graph.shape == (2, enc.graph_dim) and ref.node.shape == (batch.num_nodes, enc.node_dim)
    other = batch.clone()
    other.emb_proteinmpnn_3 = torch.randn_like(other.emb_proteinmpnn_3)  # the structure level: not read
    assert torch.equal(enc(other).node, ref.node)
    other.emb_near_8 = torch.randn_like(other.emb_near_8)  # the sequence level: read
    assert not torch.allclose(enc(other).node, ref.node)


def test_adapter_slot_encoder_is_the_whole_encoder_and_trains():
    probe = MeanEmbeddingEncoder(LEVELS, mix="scalar_mix")
    enc = AdapterEncoder(probe, None)
    batch = _batch((0, 1))
    out, alone = enc(batch), probe(batch)
    assert torch.equal(out.node, alone.node) and torch.equal(out.graph, alone.graph)
    assert (enc.graph_dim, enc.node_dim) == (probe.graph_dim, probe.node_dim) == (16, 16)
    assert set(enc.required_batch_attributes) == {*LEVELS, "batch"}
    out.graph.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    with pytest.raises(ConfigError, match="without a predictor the adapter must be an encoder"):
        AdapterEncoder(torch.nn.Linear(4, 4), None)
