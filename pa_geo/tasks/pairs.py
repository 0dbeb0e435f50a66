"""Residue-pair labels for a batch: gather each predicted pair's target from its protein's contact map."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def gather_pair_labels(contact_maps: Sequence[Tensor], pair_index: Tensor, batch: Tensor,
                       label_masks: Sequence[Tensor | None] | None = None) -> tuple[Tensor, Tensor]:
    """Targets and label mask of the pairs a contact head scored.

    Args:
        contact_maps: per protein b, ``[L_b, L_b]`` bool contact map (``TaskRecord.label`` of the contact task).
        pair_index: ``[2, P]`` int64 node indices into the batch; both ends in the same protein.
        batch: ``[N]`` protein index of each node (PyG ``Batch.batch``; a protein's nodes are contiguous).
        label_masks: per protein ``[L_b]`` bool (``TaskRecord.label_mask``), None = every residue labelled.
    Returns:
        ``target [P]`` float32 (1 contact, 0 not) and ``mask [P]`` bool (both residues labelled).
    """
    batch = batch.long()
    counts = torch.bincount(batch, minlength=len(contact_maps))
    ptr = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
    i, j = pair_index[0].long(), pair_index[1].long()
    b = batch[i]
    if bool((batch[j] != b).any()):
        raise ValueError("gather_pair_labels: a pair joins residues of two different proteins")
    li, lj = i - ptr[b], j - ptr[b]
    target = torch.zeros(i.numel(), dtype=torch.float32, device=pair_index.device)
    mask = torch.ones(i.numel(), dtype=torch.bool, device=pair_index.device)
    for p in torch.unique(b).tolist():
        sel = b == p
        cmap = torch.as_tensor(contact_maps[p], device=pair_index.device).bool()
        if cmap.shape != (int(counts[p]), int(counts[p])):
            raise ValueError(f"gather_pair_labels: protein {p} has {int(counts[p])} nodes but a "
                             f"{tuple(cmap.shape)} contact map")
        target[sel] = cmap[li[sel], lj[sel]].float()
        if label_masks is not None and label_masks[p] is not None:
            m = torch.as_tensor(label_masks[p], device=pair_index.device).bool()
            mask[sel] = m[li[sel]] & m[lj[sel]]
    return target, mask
