"""configs/custom/*.yaml: each template, on a table with and without structures, is built by the CLI exactly as
``pa-geo fit --config configs/custom/<t>.yaml --data.table <table>`` and trains one step (forward + backward).

Embeddings are random vectors under the right keys (``tests.helpers.caches``): the real encoders run in the README
test; here the wiring is checked: task registered from the table, structure level dropped without structures, heads
sized from the encoder, every weight reached by the gradient."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pa_geo.graphs.schema import embedding_field
from tests.helpers.caches import fill_random_cache
from tests.helpers.tables import write_dssp_table
from pa_geo.train.cli import build_cli
from pa_geo.errors import ConfigError

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]
CUSTOM = Path(__file__).resolve().parents[2] / "configs" / "custom"
TEMPLATES = ["protein_classification", "protein_regression", "residue_classification", "residue_regression"]


@pytest.mark.parametrize("structures", [True, False], ids=["structures", "sequences"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_template_trains_one_step(template, structures, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    level, kind = template.split("_")
    table = write_dssp_table(tmp_path / "my", n=8, level=level,
                             type="multiclass" if kind == "classification" else "regression", structures=structures)
    cli = build_cli(["--config", str(CUSTOM / f"{template}.yaml"), "--data.table.path", str(table),
                     "--data.num_workers", "0", "--trainer.accelerator", "cpu"], run=False)
    dm, model = cli.datamodule, cli.model
    spec = dm.specs["table"]
    assert (spec.level, spec.label_type) == ({"protein": "graph", "residue": "node"}[level],
                                             "multiclass" if kind == "classification" else "regression")
    levels = dict(model.encoder.adapter.levels)
    backbones = [e["backbone"] for e in dm.embeddings]
    if structures:
        assert backbones == ["near", "proteinmpnn"] and set(levels) == {"emb_near_8", "emb_proteinmpnn_3"}
    else:  # the structure level is left out automatically, in the data and in the model
        assert backbones == ["near"] and set(levels) == {"emb_near_8"}
        assert model.encoder.adapter.bias_spec is None  # no coordinates: the geometric attention bias is off
    assert model.hparams.task_spec["options"]["has_structures"] is structures
    proteins = [p for split in spec.splits for r in dm.records("table", split) for p in r.proteins]
    for entry in dm.embeddings:
        dims = {int(layer): levels[embedding_field(entry["backbone"], layer)] for layer in entry["layers"]}
        fill_random_cache(entry["cache"], entry["backbone"], dims, proteins)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    loss, _ = model._task_loss(batch)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    # pooling scores of scales a 1-graph batch does not reach may stay at zero; everything else must get gradient
    assert not [n for n in missing if "pool" not in n], missing


def test_template_without_a_table_says_what_to_give(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"data.table describes a residue-level multiclass table, but "
                                          r"data.table.path is not set: give --data.table.path"):
        build_cli(["--config", str(CUSTOM / "residue_classification.yaml")], run=False)
