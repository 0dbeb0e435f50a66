"""Readers for the PEER benchmark's LMDB tasks in their released layout (TAPE / TorchDrug archives).

``root`` is the folder the archives were extracted into, as TorchDrug does (``<root>/fluorescence/
fluorescence_train.lmdb``); ``root`` may also be the task's own folder (``<root>/fluorescence_train.lmdb``).
Field names, LMDB names and split names are those of ``torchdrug/datasets/*.py`` (see ``docs/tasks.md``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pa_geo.formats.record_checks import RecordChecks, label_problem, sequence_problem
from pa_geo.formats.tape_lmdb import read_tape_lmdb
from pa_geo.errors import DatasetError
from pa_geo.io.protein import Protein
from pa_geo.datasets.records import TaskRecord

_S3 = "https://miladeepgraphlearningproteindata.s3.us-east-2.amazonaws.com"
_TAPE = "http://s3.amazonaws.com/songlabdata/proteindata/data_pytorch"

CONTACT_THRESHOLD = 8.0  # Angstrom between the coordinates in ``tertiary`` (CA in TAPE's ProteinNet parser)


@dataclass(frozen=True)
class PeerLMDBSource:
    """Where one PEER task's LMDBs live and which record fields it reads.

    pattern          LMDB path relative to ``root`` with ``{split}`` (TorchDrug's ``lmdb_files``)
    url              the archive TorchDrug downloads
    sequence_fields  one (single protein / protein-ligand) or two (protein pair) sequence fields
    target_fields    label fields
    smiles_field     ligand SMILES field (protein-ligand tasks)
    """

    pattern: str
    url: str
    sequence_fields: tuple[str, ...] = ("primary",)
    target_fields: tuple[str, ...] = ()
    smiles_field: str | None = None


PEER_LMDB_SOURCES: dict[str, PeerLMDBSource] = {
    "fluorescence": PeerLMDBSource("fluorescence/fluorescence_{split}.lmdb", f"{_TAPE}/fluorescence.tar.gz",
                                   target_fields=("log_fluorescence",)),
    "stability": PeerLMDBSource("stability/stability_{split}.lmdb", f"{_TAPE}/stability.tar.gz",
                                target_fields=("stability_score",)),
    "beta_lactamase": PeerLMDBSource("beta_lactamase/beta_lactamase_{split}.lmdb",
                                     f"{_S3}/peerdata/beta_lactamase.tar.gz", target_fields=("scaled_effect1",)),
    "solubility": PeerLMDBSource("solubility/solubility_{split}.lmdb", f"{_S3}/peerdata/solubility.tar.gz",
                                 target_fields=("solubility",)),
    "subcellular_localization": PeerLMDBSource(
        "subcellular_localization/subcellular_localization_{split}.lmdb",
        f"{_S3}/peerdata/subcellular_localization.tar.gz", target_fields=("localization",)),
    "binary_localization": PeerLMDBSource(
        "subcellular_localization_2/subcellular_localization_2_{split}.lmdb",
        f"{_S3}/peerdata/subcellular_localization_2.tar.gz", target_fields=("localization",)),
    "fold": PeerLMDBSource("remote_homology/remote_homology_{split}.lmdb", f"{_TAPE}/remote_homology.tar.gz",
                           target_fields=("fold_label",)),
    "secondary_structure": PeerLMDBSource("secondary_structure/secondary_structure_{split}.lmdb",
                                          f"{_TAPE}/secondary_structure.tar.gz", target_fields=("ss3", "valid_mask")),
    "contact": PeerLMDBSource("proteinnet/proteinnet_{split}.lmdb", f"{_S3}/data/proteinnet.tar.gz",
                              target_fields=("tertiary", "valid_mask")),
    "yeast_ppi": PeerLMDBSource("yeast_ppi/yeast_ppi_{split}.lmdb", f"{_S3}/ppidata/yeast_ppi.zip",
                                sequence_fields=("primary_1", "primary_2"), target_fields=("interaction",)),
    "human_ppi": PeerLMDBSource("human_ppi/human_ppi_{split}.lmdb", f"{_S3}/ppidata/human_ppi.zip",
                                sequence_fields=("primary_1", "primary_2"), target_fields=("interaction",)),
    "ppi_affinity": PeerLMDBSource("ppi_affinity/ppi_affinity_{split}.lmdb", f"{_S3}/ppidata/ppi_affinity.zip",
                                   sequence_fields=("primary_1", "primary_2"), target_fields=("interaction",)),
    "pdbbind": PeerLMDBSource("pdbind/pdbind_{split}.lmdb", f"{_S3}/peerdata/pdbind.tar.gz",
                              sequence_fields=("target",), target_fields=("affinity",), smiles_field="drug"),
    "bindingdb": PeerLMDBSource("BindingDB_Kd_{split}.lmdb", f"{_S3}/peerdata/BindingDB_Kd.tar.gz",
                                sequence_fields=("target",), target_fields=("affinity",), smiles_field="drug"),
}


def peer_lmdb_path(task: str, root: str | Path, split: str) -> Path:
    """The LMDB of ``task``/``split`` under ``root``; a one-line ``DatasetError`` says where it is expected."""
    source = PEER_LMDB_SOURCES[task]
    rel = Path(source.pattern.format(split=split))
    root = Path(root)
    for candidate in (root / rel, root / rel.name):
        if candidate.exists():
            return candidate
    raise DatasetError(f"{root / rel}: PEER {task} split {split!r} not found; extract {source.url} "
                       f"(as TorchDrug does) into {root}")


def _text(value: Any, source: str, field: str) -> str:
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        raise DatasetError(f"{source}: field {field!r} should be a sequence string, got {type(value).__name__}")
    return value


def _scalar(value: Any, source: str, field: str) -> float:
    arr = np.asarray(value)
    if arr.size != 1 or not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
        raise DatasetError(f"{source}: field {field!r} should be one number, got {arr.dtype} of shape {arr.shape}")
    return float(arr.reshape(-1)[0])


def _numeric_array(value: Any, source: str, field: str, dtype: type) -> np.ndarray:
    """``value`` as a 1-D/2-D numeric array of ``dtype``; one line when it holds text or objects."""
    arr = np.asarray(value)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise DatasetError(f"{source}: field {field!r} should be numbers, got {arr.dtype} values "
                           f"(e.g. {arr.reshape(-1)[:3].tolist()!r})")
    return arr.astype(dtype)


def _record_id(item: dict[str, Any], task: str, split: str, index: int) -> str:
    rid = item.get("id")
    if isinstance(rid, bytes):
        rid = rid.decode()
    return str(rid) if rid not in (None, "") else f"{task}/{split}/{index}"


def contact_map(coords: np.ndarray, threshold: float = CONTACT_THRESHOLD) -> np.ndarray:
    """``[L, L]`` bool: pairs whose coordinates (``[L, 3]``) are closer than ``threshold``; NaN rows never contact."""
    diff = coords[:, None, :] - coords[None, :, :]
    with np.errstate(invalid="ignore"):
        return np.sqrt((diff ** 2).sum(-1)) < threshold


def _residue_coords(tertiary: Any, length: int, source: str) -> np.ndarray:
    arr = np.asarray(tertiary, dtype=np.float32)
    if arr.ndim == 3 and arr.shape[0] == length and arr.shape[2] == 3:  # [L, atoms, 3]: N, CA, C(, O)
        arr = arr[:, 1]
    if arr.shape != (length, 3):
        raise DatasetError(f"{source}: 'tertiary' has shape {arr.shape}, expected ({length}, 3) for {length} residues")
    return arr


_CLASS_TASKS = ("solubility", "subcellular_localization", "binary_localization", "fold", "yeast_ppi", "human_ppi")
SS3_CLASSES = 3  # TAPE ss3: 0 helix, 1 strand, 2 other


def _build_record(task: str, split: str, index: int, item: dict[str, Any], src: PeerLMDBSource,
                  lmdb_path: Path, checks: RecordChecks) -> TaskRecord | None:
    """One TaskRecord, or None when ``checks`` refuses it (empty / non-protein sequence, non-finite label)."""
    where = f"{lmdb_path}[{index}]"
    rid = _record_id(item, task, split, index)
    seqs = [_text(item[f], where, f) for f in src.sequence_fields]
    for seq in seqs:
        if problem := sequence_problem(seq):
            checks.refuse(f"[{index}]", problem)
            return None
    if len(seqs) == 2:
        proteins = [Protein.from_sequence(f"{rid}/A", seqs[0], source=where),
                    Protein.from_sequence(f"{rid}/B", seqs[1], source=where)]
    else:
        proteins = [Protein.from_sequence(rid, seqs[0], source=where)]
    length = len(seqs[0])
    extra: dict[str, Any] = {}
    if src.smiles_field is not None:
        extra["smiles"] = _text(item[src.smiles_field], where, src.smiles_field)

    if task == "secondary_structure":
        ss3 = _numeric_array(item["ss3"], where, "ss3", np.float64).reshape(-1)
        mask = _numeric_array(item["valid_mask"], where, "valid_mask", bool).reshape(-1)
        if ss3.shape[0] != length or mask.shape[0] != length:
            raise DatasetError(f"{where}: ss3 / valid_mask lengths {ss3.shape[0]} / {mask.shape[0]} "
                               f"differ from the sequence length {length}")
        in_range = np.isin(ss3, np.arange(SS3_CLASSES))  # not NaN, not a fraction, a class of 0..2
        checks.mask("ss3 not in 0..2 where valid_mask is set", int((mask & ~in_range).sum()))
        mask &= in_range
        return TaskRecord(rid, proteins, np.where(in_range, ss3, 0).astype(np.int64), label_mask=mask, extra=extra)
    if task == "contact":
        coords = _residue_coords(_numeric_array(item["tertiary"], where, "tertiary", np.float32), length, where)
        mask = _numeric_array(item["valid_mask"], where, "valid_mask", bool).reshape(-1)
        if mask.shape[0] != length:
            raise DatasetError(f"{where}: valid_mask has {mask.shape[0]} entries for {length} residues")
        finite = np.isfinite(coords).all(-1)
        checks.mask("non-finite tertiary coordinates where valid_mask is set", int((mask & ~finite).sum()))
        mask &= finite
        return TaskRecord(rid, proteins, contact_map(coords), label_mask=mask, extra=extra)

    (field,) = src.target_fields
    value = _scalar(item[field], where, field)
    if problem := label_problem(value):
        checks.refuse(f"[{index}]", problem)
        return None
    label: float | int = value
    if task in _CLASS_TASKS:
        if value != int(value):
            raise DatasetError(f"{where}: class label {field!r} = {value} is not an integer")
        label = int(value)
    return TaskRecord(rid, proteins, label, extra=extra)


def load_peer_lmdb(task: str, root: str | Path, split: str) -> list[TaskRecord]:
    """Read ``split`` of the PEER LMDB task ``task`` into :class:`TaskRecord` s (sequence-only proteins).

    Labels: graph tasks a float (regression) or int (class); ``secondary_structure`` ``ss3 [L]`` int64 with
    ``label_mask = valid_mask``; ``contact`` a ``[L, L]`` bool map (``tertiary`` closer than 8 A) with
    ``label_mask [L]``; protein-ligand tasks carry the ligand SMILES in ``extra["smiles"]``.

    Records with an empty sequence, characters outside the amino-acid alphabet or a non-finite label are left
    out; ss3 classes outside 0..2 and non-finite ``tertiary`` rows are masked; one :class:`DatasetWarning` per
    file gives the counts (:mod:`pa_geo.formats.record_checks`). Any other malformed record is a one-line
    :class:`DatasetError` naming the file and the record index.
    """
    if task not in PEER_LMDB_SOURCES:
        raise DatasetError(f"{task}: not a PEER LMDB task ({', '.join(PEER_LMDB_SOURCES)})")
    src = PEER_LMDB_SOURCES[task]
    path = peer_lmdb_path(task, root, split)
    required = src.sequence_fields + src.target_fields + ((src.smiles_field,) if src.smiles_field else ())
    items = read_tape_lmdb(path, required_fields=required)
    checks = RecordChecks(str(path))
    records = []
    for i, item in enumerate(items):
        try:
            rec = _build_record(task, split, i, item, src, path, checks)
        except DatasetError:
            raise
        except Exception as err:  # noqa: BLE001 - any malformed field of one record is that record's error
            reason = " ".join(f"{type(err).__name__}: {err}".split())
            raise DatasetError(f"{path}[{i}]: malformed {task} record ({reason})") from None
        if rec is not None:
            records.append(rec)
    checks.report(len(items))
    return records
