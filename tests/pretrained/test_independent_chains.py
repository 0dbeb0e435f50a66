"""The independent check of the shipped models: the 50 real ``data/pdb_dssp`` chains (never trained on: their PDB
entries and sequence clusters were kept out) predicted through ``pa-geo predict``'s path, scored against their
reference DSSP, must not fall more than 0.01 below the model card's numbers (the metrics JSON shipped beside each
checkpoint). This catches broken weights and broken preprocessing (reader, graph, embeddings, CA reduction)."""
from __future__ import annotations

import pytest

from pa_geo.pretrained import get_model
from pa_geo.pretrained.scoring import read_dssp3_strings, read_dssp8_table, score_dssp
from tests.helpers.pretrained import PDB_DSSP, require

TOLERANCE = 0.01
CHAINS = 50


@pytest.mark.parametrize("name", ["ss8-rsa", "ss8-rsa-ca"])
def test_shipped_model_keeps_its_card_scores_on_the_independent_chains(name, independent_predictions) -> None:
    require(name)
    card = get_model(name).metrics()
    assert card, f"{get_model(name).metrics_file} is missing: the checkpoint ships without its model card numbers"
    frame, summary = independent_predictions(name)
    assert summary.proteins == CHAINS and not summary.refused, summary.refused
    scores = score_dssp(frame, read_dssp8_table(PDB_DSSP / "dssp8.tsv"), read_dssp3_strings(PDB_DSSP))
    expected = card["independent"]
    assert expected["chains"] == scores["chains"] == CHAINS and expected["residues"] == scores["residues"]
    assert scores["q8"] >= expected["q8"] - TOLERANCE, (scores["q8"], expected["q8"])
    assert scores["q3"] >= expected["q3"] - TOLERANCE, (scores["q3"], expected["q3"])
