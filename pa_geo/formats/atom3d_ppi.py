"""ATOM3D PPI (DIPS): interface residue pairs of two subunits, and upstream's per-epoch pair sampler.

Upstream (read with the search tool):

* ``drorlab/atom3d`` ``examples/ppi/dataset/prepare_lmdb.py`` + ``neighbors.py``: an item is one ensemble,
  ``atoms_pairs`` (the atoms of two subunits, ``subunit`` telling them apart; ``get_subunits`` takes them in order
  of appearance) and ``atoms_neighbors`` (one row per interface pair ``chain0, residue0, subunit0, chain1,
  residue1, subunit1``): residues whose atoms named ``CA`` are closer than 8 A (``--cutoff 8``, ``--cutoff-type
  CA``, ``dist < cutoff``). Negatives (``get_negatives``) are every residue pair of the two subunits that is not a
  neighbour pair.
* ``drorlab/atom3d`` ``examples/ppi/gnn/data.py`` (``create_labels``) and ``drorlab/gvp-pytorch``
  ``gvp/atom3d.py`` (``PPIDataset._create_labels``), called once per complex per pass over the data:
  ``positives.sample(frac=min(1, 10 / num_positives))`` (at most 10 positives, fresh each epoch: unseeded) and
  ``negatives.sample(min(num_negatives, num_sampled_positives * 1), random_state=0)`` (as many negatives, drawn
  with the fixed seed 0, hence the same ones every epoch). Pairs whose residue has no CA are dropped when their
  graphs are built.

pa_geo's records carry every positive pair (``extra['positive_pairs']`` [2, P] residue indices into
``proteins[0]`` / ``proteins[1]``); the negative pool is every other pair of amino-acid residues of the two
subunits (upstream's pool also holds non-amino-acid groups, whose pairs it drops later). ``pair_index`` / ``label``
of a record are :func:`sample_ppi_pairs` at epoch 0 (what an evaluation split uses); the protein-pair task kind
calls it again each training epoch.
"""
from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from pa_geo.formats.atom3d_frames import frame_to_protein
from pa_geo.formats.atom3d_tasks import item_frame, residue_lookup
from pa_geo.datasets.records import TaskRecord
from pa_geo.errors import DatasetError

MAX_POSITIVES = 10  # atom3d / gvp-pytorch: num_pos=10
NEGATIVE_RATIO = 1  # neg_pos_ratio=1
NEIGHBOR_COLUMNS = ("chain0", "residue0", "subunit0", "chain1", "residue1", "subunit1")


def _key(key: int | str) -> int:
    """A stable non-negative integer for a record key (``hash`` of a str changes between processes)."""
    return int(key) if isinstance(key, (int, np.integer)) and key >= 0 else zlib.crc32(str(key).encode())


def sample_ppi_pairs(positive_pairs: np.ndarray, num_residues: tuple[int, int], epoch: int, key: int | str,
                     seed: int = 0, max_positives: int = MAX_POSITIVES, negative_ratio: int = NEGATIVE_RATIO,
                     fixed_negatives: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Upstream's per-epoch draw of one complex's residue pairs (see the module docstring for the sources).

    Args:
        positive_pairs: [2, P] int residue indices (row 0 into subunit 0, row 1 into subunit 1) of every
            neighbour pair; duplicates are ignored.
        num_residues: (L0, L1) residues of the two subunits; the negative pool is the L0 * L1 - P other pairs.
        epoch: training epoch (>= 0): the positives change with it.
        key: the record (its id or index), so complexes draw independently.
        seed: run seed (>= 0).
        max_positives, negative_ratio: at most ``max_positives`` positives, ``negative_ratio`` negatives per
            sampled positive (capped by the pool), as upstream (10, 1).
        fixed_negatives: upstream draws negatives with ``random_state=0``, i.e. the same ones every epoch (True);
            False draws them afresh each epoch.

    Returns:
        ``(pair_index [2, K] int64, label [K] float32)``: the sampled positives (label 1) then the negatives
        (label 0), each group sorted; both sampled uniformly without replacement. A pure function of its
        arguments.
    """
    if epoch < 0 or seed < 0:
        raise ValueError(f"sample_ppi_pairs: epoch and seed must be >= 0, got {epoch}, {seed}")
    n0, n1 = (int(n) for n in num_residues)
    pos = np.asarray(positive_pairs, dtype=np.int64).reshape(2, -1)
    if pos.size and (pos.min() < 0 or pos[0].max() >= n0 or pos[1].max() >= n1):
        raise ValueError(f"sample_ppi_pairs: positive pairs outside the subunits' {n0} and {n1} residues")
    flat = np.unique(pos[0] * n1 + pos[1])  # sorted, so rank -> flat index below is a searchsorted
    k = _key(key)
    take = min(max_positives, flat.size)
    chosen = np.sort(np.random.default_rng([seed, k, epoch, 1]).choice(flat, size=take, replace=False))
    pool = n0 * n1 - flat.size
    n_neg = min(pool, take * int(negative_ratio))
    neg_rng = np.random.default_rng([seed, k, 0] if fixed_negatives else [seed, k, epoch, 2])
    ranks = np.sort(neg_rng.choice(pool, size=n_neg, replace=False)) if n_neg else np.zeros(0, np.int64)
    # rank r of the pool (all pairs minus the positives, in flat order) is flat index r + #positives below it
    shifted = flat - np.arange(flat.size)
    negatives = ranks + np.searchsorted(shifted, ranks, side="right")
    both = np.concatenate([chosen, negatives])
    pair_index = np.stack([both // max(n1, 1), both % max(n1, 1)]).astype(np.int64)
    label = np.concatenate([np.ones(take, np.float32), np.zeros(n_neg, np.float32)])
    return pair_index, label


def _as_int(value: object) -> int | None:
    try:
        f = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else None


def _subunit_names(atoms: pd.DataFrame, where: str) -> list[str]:
    if "subunit" not in atoms.columns:
        raise DatasetError(f"{where}: atoms_pairs has no subunit column")
    names = pd.unique(atoms["subunit"]).tolist()  # atom3d get_subunits: order of appearance
    if len(names) != 2:
        raise DatasetError(f"{where}: atoms_pairs holds {len(names)} subunits, a DIPS pair needs 2 (DB5 "
                           f"bound/unbound ensembles are not supported)")
    return names


def ppi_record(item: dict, where: str, seed: int = 0) -> TaskRecord:
    """PPI item -> proteins [subunit 0, subunit 1], ``extra['positive_pairs']`` [2, P] every interface pair,
    ``extra['pair_index']`` [2, K] + ``label`` [K] float32 = :func:`sample_ppi_pairs` at epoch 0.

    Raises :class:`DatasetError` naming the record when a neighbour row names a residue that is not an amino-acid
    residue of its subunit (e.g. a calcium ion, whose atom is also named CA) or when there is no neighbour row.
    """
    rid = str(item.get("id"))
    here = f"{where} ({rid})"
    atoms, nb = item_frame(item, "atoms_pairs", where), item_frame(item, "atoms_neighbors", where)
    missing = [c for c in NEIGHBOR_COLUMNS if c not in nb.columns]
    if missing or len(nb) == 0:
        raise DatasetError(f"{here}: atoms_neighbors needs rows with {', '.join(NEIGHBOR_COLUMNS)}")
    names = _subunit_names(atoms, here)
    proteins = [frame_to_protein(atoms[atoms["subunit"] == s], f"{rid}:{s}", where) for s in names]
    for s, p in zip(names, proteins):
        if len(p) == 0:
            raise DatasetError(f"{here}: subunit {s!r} has no amino-acid residues")
    lookups = [residue_lookup(p) for p in proteins]
    sides = [nb[f"subunit{i}"].astype(str).to_numpy() for i in (0, 1)]
    swapped = (sides[0] == str(names[1])) & (sides[1] == str(names[0]))
    if not (swapped | ((sides[0] == str(names[0])) & (sides[1] == str(names[1])))).all():
        raise DatasetError(f"{here}: atoms_neighbors names subunits other than {names[0]!r} and {names[1]!r}")
    pairs = []
    for row, flip in zip(nb[list(NEIGHBOR_COLUMNS)].itertuples(index=False), swapped.tolist()):
        ends = [(str(row.chain0).strip(), row.residue0), (str(row.chain1).strip(), row.residue1)]
        ends = ends[::-1] if flip else ends
        idx = []
        for side, (chain, number) in enumerate(ends):
            found = lookups[side].get((chain, _as_int(number)))
            if found is None:
                raise DatasetError(f"{here}: neighbour residue {chain}:{number} of subunit {names[side]!r} is not "
                                   f"an amino-acid residue (an ion or ligand atom named CA?)")
            idx.append(found)
        pairs.append(idx)
    positive = np.unique(np.asarray(pairs, np.int64), axis=0).T.copy()
    pair_index, label = sample_ppi_pairs(positive, (len(proteins[0]), len(proteins[1])), epoch=0, key=rid,
                                         seed=seed)
    return TaskRecord(rid, proteins, label, extra={"positive_pairs": positive, "pair_index": pair_index,
                                                   "subunits": [str(n) for n in names]})
