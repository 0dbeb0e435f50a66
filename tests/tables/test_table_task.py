"""The TaskSpec of a label table: level and type decide input kind, outputs, metrics, loss; records load."""
from __future__ import annotations

import pytest
import torch

from pa_geo.tables import LabelTable, TableSettings
from pa_geo.tasks.losses import build_loss
from pa_geo.tasks.metrics import build_metrics
from pa_geo.tasks import get_task, register_task, unregister_task
from pa_geo.tables.task import table_metrics, table_task_spec

ROWS = ("a,MKTAYIAKQR,HHEE.C..CC,{p},train\nb,GSHMLEDPVD,CCHHHHEECC,{q},train\n"
        "c,PEPTIDEWWW,EEEECCCHHH,{p},valid\nd,WWPPCCHHAA,CCCCCCCCCC,{q},test\n")


@pytest.mark.parametrize("level, kind, p, q, input_kind, spec_level, outputs, primary, higher", [
    ("protein", "regression", "1.5", "2.5", "sequence", "graph", 1, "spearman", True),
    ("protein", "binary", "no", "yes", "sequence", "graph", 1, "auroc", True),
    ("protein", "multiclass", "x", "y", "sequence", "graph", 2, "accuracy", True),
    ("protein", "multilabel", "x;y", "z", "sequence", "graph", 3, "fmax", True),
    ("residue", "multiclass", "", "", "sequence", "node", 3, "accuracy", True),
    ("residue", "binary", "", "", "sequence", "node", 1, "auroc", True),
])
def test_spec_follows_level_and_type(tmp_path, level, kind, p, q, input_kind, spec_level, outputs, primary, higher):
    path = tmp_path / "t.csv"
    label = "ss" if level == "residue" else "label"
    path.write_text(f"id,sequence,ss,label,split\n" + ROWS.format(p=p, q=q))
    names = ["C", "H"] if (level, kind) == ("residue", "binary") else None
    table = LabelTable(TableSettings(path, level=level, type=kind, label_columns=[label], class_names=names,
                                     mask_symbols=".E" if names else "."))
    spec = table_task_spec(table, name="my_table")
    assert (spec.input_kind, spec.level, spec.label_type, spec.num_outputs) == (input_kind, spec_level, kind, outputs)
    assert spec.primary_metric == primary and spec.higher_is_better is higher
    assert spec.splits == ["train", "valid", "test"] and spec.options["class_names"] == table.codec.class_names
    register_task(spec, overwrite=True)
    try:
        assert get_task("my_table").num_outputs == outputs
    finally:
        unregister_task("my_table")
    records = list(spec.load("unused", "train"))
    assert [r.id for r in records] == ["a", "b"]
    metrics, loss = build_metrics(spec, "val/"), build_loss(spec)
    rows = len(records[0].proteins[0]) if level == "residue" else 2
    preds = torch.randn(rows, max(outputs, 1) if kind != "binary" else 1, requires_grad=True)
    if kind == "multiclass":
        target = torch.as_tensor(records[0].label if level == "residue" else [r.label for r in records])
    elif level == "residue":
        target = torch.as_tensor(records[0].label).reshape(rows, 1)
    else:
        target = torch.as_tensor([r.label for r in records], dtype=torch.float32).reshape(rows, -1)
    mask = torch.as_tensor(records[0].label_mask) if level == "residue" else None
    loss(preds, target, mask).backward()
    assert preds.grad is not None and preds.grad.abs().sum() > 0
    metrics.update(preds.detach(), target, mask=mask)
    assert f"val/{primary}" in metrics.compute()


def test_structure_tables_and_residue_regression_metrics():
    assert table_metrics("residue", "regression")[0] == "pearson"  # streaming; Spearman keeps every residue
    assert table_metrics("protein", "regression")[0] == "spearman"
    assert table_metrics("pair", "binary") == table_metrics("protein", "binary")
