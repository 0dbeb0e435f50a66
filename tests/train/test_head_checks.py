"""Heads are checked against their task when the model is built (``pa-geo fit`` exits 1 with one line before any
data is read): a head of the wrong kind for its task, an output width that is not the task's, an input width that is
not the encoder's, the same for auxiliary heads, and a module that is no task head at all."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pa_geo.cli import main
from tests.helpers import training as tk

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CASES = {  # name: (task, head class, head init args, aux heads, expected line after "pa-geo fit: error: ")
    "node_head_on_protein_task": (
        "ttest_helix", "pa_geo.nn.heads.NodeHead", {}, None,
        "task 'ttest_helix' (protein kind) needs a head for graph inputs, got NodeHead (node inputs)"),
    "graph_head_on_residue_task": (
        "ttest_ss3", "pa_geo.nn.heads.GraphHead", {}, None,
        "task 'ttest_ss3' (residue kind) needs a head for node inputs, got GraphHead (graph inputs)"),
    "five_outputs_for_three_classes": (
        "ttest_ss3", "pa_geo.nn.heads.NodeHead", {"out_dim": 5}, None,
        "task 'ttest_ss3': NodeHead out_dim=5 but the task has 3 output(s) (leave out_dim out: it follows from the "
        "task)"),
    "input_width_not_the_encoders": (
        "ttest_ss3", "pa_geo.nn.heads.NodeHead", {"in_dim": 7}, None,
        f"task 'ttest_ss3': NodeHead in_dim=7 but the encoder's node_dim is {tk.EMB_DIM} (leave in_dim out: it is "
        "read from the encoder)"),
    "contact_head_on_residue_classes": (
        "ttest_ss3", "pa_geo.nn.heads.ContactHead", {}, None,
        "task 'ttest_ss3' (residue kind) needs a head for node inputs, got ContactHead (residue_pair inputs)"),
    "not_a_task_head": (
        "ttest_ss3", "torch.nn.Identity", {}, None,
        "task 'ttest_ss3' (residue kind) needs a head for node inputs, got Identity (unknown inputs)"),
    "aux_node_head_on_protein_task": (
        "ttest_ss3", "pa_geo.nn.heads.NodeHead", {}, {"ttest_helix": "pa_geo.nn.heads.NodeHead"},
        "task 'ttest_helix' (protein kind) needs a head for graph inputs, got NodeHead (node inputs)"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_head_that_does_not_fit_its_task_is_one_line_at_build_time(case: str, tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    task, head, init, aux, expected = CASES[case]
    cfg = copy.deepcopy(tk.config(tmp_path, task=task))
    cfg["model"]["head"] = {"class_path": head, "init_args": init}
    if aux:
        cfg["model"]["aux_tasks"] = {t: 0.5 for t in aux}
        cfg["model"]["aux_heads"] = {t: {"class_path": c, "init_args": {}} for t, c in aux.items()}
        cfg["data"]["aux_data_roots"] = {t: None for t in aux}
    cfg["data"]["graph_cache"] = str(tmp_path / "stores")
    assert main(["fit", "--config", str(tk.write_config(tmp_path / "c.yaml", cfg))]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"pa-geo fit: error: {expected}" and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "stores").exists()  # refused when the model was built, before any data was read
