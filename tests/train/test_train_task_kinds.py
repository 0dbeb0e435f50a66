"""Every input kind trains, validates and predicts: protein pairs, mutations, SMILES ligands, contact maps and
cross-protein residue pairs (real StructureDB chains; labels derived from their DSSP / coordinates)."""
from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl

from pa_geo.cache.runner import embed_proteins
from pa_geo.nn.baselines import MeanEmbeddingEncoder
from pa_geo.nn.heads import ContactHead, LigandHead, MutationHead, ProteinPairHead
from pa_geo.tasks import register_task
from pa_geo.tasks.spec import TaskRecord, TaskSpec
from tests.helpers import training as tk
from pa_geo.train.datamodule import PaGeoDataModule
from pa_geo.train.module import PaGeoModule
from pa_geo.train.predictions import PredictionCSVWriter

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")
SMILES = ["CC(=O)Oc1ccccc1C(=O)O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
          "NCCc1ccc(O)c(O)c1", "OC[C@H]1OC(O)[C@H](O)[C@@H](O)[C@@H]1O"]


def _chains() -> list:
    return tk._structuredb(str(tk.DATA_ROOT))


def _helix(r) -> float:
    return float(np.mean(r.ss3 == 0))


def _mutant(p):
    k = len(p) // 2
    seq = p.sequence[:k] + ("A" if p.sequence[k] != "A" else "G") + p.sequence[k + 1:]
    return dataclasses.replace(p, id=f"{p.id}_mut", sequence=seq)


def _records(kind: str, root: Path, split: str) -> list[TaskRecord]:
    c = _chains()
    idx = {"train": range(0, 8), "valid": range(8, 12), "test": range(12, 16)}[split]
    out = []
    for i in idx:
        a, b = c[i], c[i + 16]
        if kind == "pair":
            out.append(TaskRecord(f"{a.protein.id}+{b.protein.id}", [a.protein, b.protein],
                                  int(abs(_helix(a) - _helix(b)) < 0.15)))
        elif kind == "mutation":
            out.append(TaskRecord(f"{a.protein.id}:mut", [a.protein, _mutant(a.protein)], _helix(a)))
        elif kind == "ligand":
            out.append(TaskRecord(f"{a.protein.id}:lig", [a.protein], _helix(a), extra={"smiles": SMILES[i % 5]}))
        elif kind == "contact":
            ca = a.protein.ca
            d = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
            out.append(TaskRecord(a.protein.id, [a.protein], d < 8.0))
        else:  # cross-protein residue pairs: label 1 when both residues are helical (real DSSP of both chains)
            rng = np.random.default_rng(i)
            pairs = np.stack([rng.integers(0, len(a.protein), 12), rng.integers(0, len(b.protein), 12)])
            label = ((a.ss3[pairs[0]] == 0) & (b.ss3[pairs[1]] == 0)).astype(np.float32)
            out.append(TaskRecord(f"{a.protein.id}+{b.protein.id}", [a.protein, b.protein], label,
                                  extra={"pair_index": pairs}))
    return out


KINDS = {  # name -> (input kind, level, label type, metrics, head factory)
    "pair": ("pair", "graph", "binary", ["accuracy", "auroc"], lambda d: ProteinPairHead(d, 1, hidden_dim=16)),
    "mutation": ("mutation", "graph", "regression", ["mae"], lambda d: MutationHead(d, 1, 16, antisymmetric=True)),
    "ligand": ("ligand", "graph", "regression", ["mae"],
               lambda d: LigandHead(d, 1, ligand_hidden=8, num_elements=22, num_layers=2, hidden_dim=16,
                                    ligand_edge_dim=4)),
    "contact": ("structure", "residue_pair", "binary", ["contact_precision_at_l5"], lambda d: ContactHead(d, 16)),
    "xpairs": ("pair", "residue_pair", "binary", ["auroc"], lambda d: ContactHead(d, 16)),
}
for _name, (_inp, _lvl, _lt, _m, _) in KINDS.items():
    register_task(TaskSpec(f"ttest_{_name}", _inp, _lvl, _lt, 1, _m, _m[0], ["train", "valid", "test"],
                           loader=functools.partial(_records, _name)), overwrite=True)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tk.fill_cache(tmp_path_factory.mktemp("kinds") / "cache")
    embed_proteins(tk.backbone(), [_mutant(r.protein) for r in _chains()], root, progress=False)
    return root


@pytest.mark.parametrize("kind", list(KINDS))
def test_kind_fits_validates_and_predicts(kind: str, cache: Path, tmp_path: Path) -> None:
    task = f"ttest_{kind}"
    dm = PaGeoDataModule(task, str(tk.DATA_ROOT), [{"cache": str(cache), "backbone": "onehot", "layers": [0]}],
                         {"kind": "residue", "radius": 8.0}, batch_nodes=400)
    head = KINDS[kind][4](tk.EMB_DIM)
    model = PaGeoModule(MeanEmbeddingEncoder({tk.FIELD: tk.EMB_DIM}), head, task, lr=1e-2, warmup_steps=0)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[PredictionCSVWriter(str(tmp_path))])
    trainer.fit(model, dm)
    spec = model.specs[task]
    assert f"val/{spec.primary_metric}" in trainer.callback_metrics and "train/loss" in trainer.callback_metrics
    trainer.predict(model, dm)
    frame = pd.read_csv(tmp_path / "predictions.csv", dtype={"id": str})
    records = _records(kind, tk.DATA_ROOT, "test")
    assert set(frame["id"]) == {r.id for r in records}
    if kind == "xpairs":
        assert len(frame) == sum(r.extra["pair_index"].shape[1] for r in records)
        first = records[0]
        rows = frame[frame["id"] == first.id]
        assert rows[["i", "j"]].to_numpy().T.tolist() == first.extra["pair_index"].tolist()
    elif kind == "contact":
        L = len(records[0].proteins[0])
        rows = frame[frame["id"] == records[0].id]
        assert len(rows) == (L - 6) * (L - 5) // 2 and (rows["j"] - rows["i"] >= 6).all()
    else:
        assert len(frame) == len(records)


def _with_bad_smiles(root: Path, split: str) -> list[TaskRecord]:
    recs = _records("ligand", root, split)
    if split == "train":
        recs.insert(2, TaskRecord("broken_ligand", [recs[0].proteins[0]], 0.5, extra={"smiles": "C1CC("}))
    return recs


register_task(TaskSpec("ttest_badlig", "ligand", "graph", "regression", 1, ["mae"], "mae", ["train", "valid", "test"],
                       loader=_with_bad_smiles), overwrite=True)


def test_a_record_that_cannot_be_built_is_skipped_and_counted(cache: Path, caplog) -> None:
    dm = PaGeoDataModule("ttest_badlig", str(tk.DATA_ROOT),
                         [{"cache": str(cache), "backbone": "onehot", "layers": [0]}], {"kind": "residue", "radius": 8.0})
    with caplog.at_level("WARNING", logger="pa_geo.datasets"):
        ds = dm.dataset("ttest_badlig", "train")
    good = _records("ligand", tk.DATA_ROOT, "train")
    assert len(ds) == len(good) and ds.meta["skipped"] == 1
    assert "record broken_ligand" in ds.meta["skipped_reasons"][0] and "cannot parse SMILES" in caplog.text
    assert [ds[i].record_id for i in range(len(ds))] == [r.id for r in good]
    labels = [float(r.label) for r in good]  # target statistics of the records kept
    assert dm.target_stats("ttest_badlig") == pytest.approx((np.mean(labels), np.std(labels)), rel=1e-5)


class _NeedsField(MeanEmbeddingEncoder):
    required_batch_attributes = ("emb_onehot_0", "emb_missing_1")


def test_a_field_the_encoder_reads_but_the_data_lacks_is_one_line(cache: Path) -> None:
    from pa_geo.errors import DatasetError

    dm = PaGeoDataModule("ttest_ligand", str(tk.DATA_ROOT), [{"cache": str(cache), "backbone": "onehot", "layers": [0]}],
                         {"kind": "residue", "radius": 8.0})
    batch = next(iter(dm.val_dataloader()[0]))
    ok = PaGeoModule(MeanEmbeddingEncoder({tk.FIELD: tk.EMB_DIM}), KINDS["ligand"][4](tk.EMB_DIM), "ttest_ligand")
    assert ok(batch).shape == (batch.num_graphs, 1)
    model = PaGeoModule(_NeedsField({tk.FIELD: tk.EMB_DIM}), KINDS["ligand"][4](tk.EMB_DIM), "ttest_ligand")
    with pytest.raises(DatasetError, match="task ttest_ligand: the batch has no emb_missing_1 for _NeedsField"):
        model(batch)
