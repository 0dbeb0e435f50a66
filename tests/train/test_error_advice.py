"""Every command an error message suggests works: each test breaks something, runs the failing command, takes the
command the one-line error suggests, runs it, and checks that the failing command then succeeds (following the
advice again where fixing one thing reveals the next). Message families: embeddings missing (no store, a layer not
cached, proteins not cached), a layer the backbone does not have, a damaged cache (truncated LMDB -> ``pa-geo cache
repair``), an entry that fails its checksum (read inside DataLoader workers, in a ``pa-geo`` subprocess), an entry of
the wrong length, and the research-code form (``attach_embeddings`` on a protein read from a FASTA file)."""
from __future__ import annotations

import copy
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from torch_geometric.data import Data

from pa_geo.backbones.base import get_backbone
from pa_geo.cache.keys import content_digest, entry_key
from pa_geo.cache.runner import embed_proteins
from pa_geo.cache.store import EmbeddingStore, store_dirname
from pa_geo.cli import main
from tests.helpers import resume as rk
from tests.helpers import subprocess_env
from tests.helpers import training as tk

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

ADVICE = re.compile(r"(?:: |`)(pa-geo [^`(]+?)`?(?: \([^)]*\))?$")


def suggested(line: str) -> list[str]:
    """The command at the end of an error line (``...: pa-geo ...``, ``run `pa-geo ...```), before a closing
    remark in parentheses."""
    found = ADVICE.search(line)
    assert found, f"no command suggested in: {line}"
    return shlex.split(found.group(1))


def _fails(capsys: pytest.CaptureFixture, argv: list[str]) -> str:
    assert main(argv) == 1, argv
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]


def _run_advice(capsys: pytest.CaptureFixture, line: str) -> None:
    cmd = suggested(line)
    assert cmd[0] == "pa-geo"
    assert main(cmd[1:]) == 0, f"{shlex.join(cmd)}: {capsys.readouterr().err[-2000:]}"
    capsys.readouterr()


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    return tmp_path


def _config(work: Path, cache: Path, embeddings: list[dict[str, Any]] | None = None, workers: int = 0) -> Path:
    cfg = tk.config(work / "run")
    cfg["data"].update(graph_cache=str(work / "stores"), num_workers=workers, max_records=None)
    cfg["data"]["embeddings"] = embeddings or [{"cache": str(cache), "backbone": "onehot", "layers": [0]}]
    if embeddings:
        levels = {f"emb_{e['backbone']}_{layer}": _dim(e["backbone"], layer) for e in embeddings
                  for layer in e["layers"]}
        cfg["model"]["encoder"]["init_args"]["levels"] = levels
    return tk.write_config(work / "cfg.yaml", cfg)


def _dim(backbone: str, layer: int) -> int:
    try:
        return get_backbone(backbone, layers=[layer]).dims[layer]
    except Exception:  # a layer the backbone lacks: any width (the run fails on the cache first)
        return 8


def test_missing_store_then_fit_succeeds(work: Path, capsys: pytest.CaptureFixture) -> None:
    cfg = _config(work, work / "cache")
    argv = ["fit", "--config", str(cfg), "--trainer.max_epochs=1"]
    line = _fails(capsys, argv)
    assert line.endswith(f"{work / 'cache' / 'onehot'}: no onehot embeddings cached; run: pa-geo embed --config {cfg} "
                         f"--trainer.max_epochs=1 (or add --data.embed_missing true to the command)")
    assert main([*argv, "--data.embed_missing", "true"]) == 0  # the first way: fit embeds, then trains
    shutil.rmtree(work / "cache")
    assert _fails(capsys, argv) == line
    _run_advice(capsys, line)  # the second: embed on its own
    assert main(argv) == 0


def test_proteins_missing_from_the_cache_then_fit_succeeds(work: Path, capsys: pytest.CaptureFixture) -> None:
    proteins = [r.protein for r in tk._structuredb(str(tk.DATA_ROOT))]
    embed_proteins(tk.backbone(), proteins[:10], work / "cache", progress=False)  # only some of them
    cfg = _config(work, work / "cache")
    line = _fails(capsys, ["validate", "--config", str(cfg), "--ckpt_path=null"])
    assert re.search(r"protein \S+: no onehot layer 0 embedding in \S+; run: pa-geo embed --config \S+ \(or add "
                     r"--data.embed_missing true to the command\)$", line)
    assert suggested(line) == ["pa-geo", "embed", "--config", str(cfg)]  # --ckpt_path is validate's own
    _run_advice(capsys, line)
    assert main(["validate", "--config", str(cfg)]) == 0


def test_a_layer_not_cached_then_fit_succeeds_and_a_layer_the_model_lacks_says_its_range(
        work: Path, capsys: pytest.CaptureFixture) -> None:
    proteins = [r.protein for r in tk._structuredb(str(tk.DATA_ROOT))]
    embed_proteins(get_backbone("near", layers=[4]), proteins, work / "cache", progress=False)
    near = {"cache": str(work / "cache"), "backbone": "near"}
    cfg = _config(work, work / "cache", [{**near, "layers": [4, 8]}])
    line = _fails(capsys, ["fit", "--config", str(cfg), "--trainer.max_epochs=1"])
    assert "layer(s) [8] of near not cached (cached: [4]); run: pa-geo embed --config" in line
    _run_advice(capsys, line)
    assert main(["fit", "--config", str(cfg), "--trainer.max_epochs=1"]) == 0
    # a model with 8 blocks has no layer 12: no embed command (it would be refused), the valid range instead
    cfg = _config(work, work / "cache", [{**near, "layers": [4, 12]}])
    line = _fails(capsys, ["fit", "--config", str(cfg)])
    assert line.endswith("layer(s) [12] of near not cached (cached: [4, 8]), and near: layer 12 out of range; valid "
                         "layers 0..8: use those layers in data.embeddings and the encoder's levels")
    assert "pa-geo embed" not in line


def test_truncated_cache_repair_then_embed_then_fit_succeeds(work: Path, capsys: pytest.CaptureFixture) -> None:
    cache = tk.fill_cache(work / "cache")
    data = cache / store_dirname(tk.BACKBONE) / "data.mdb"
    os.truncate(data, data.stat().st_size - 4096)  # an interrupted copy / a full disk
    cfg = _config(work, cache)
    argv = ["fit", "--config", str(cfg), "--trainer.max_epochs=1"]
    line = _fails(capsys, argv)
    assert f"{data.parent}: embedding cache is damaged" in line
    assert suggested(line) == ["pa-geo", "cache", "repair", str(data.parent)]
    assert main(["cache", "verify", str(cache)]) == 1  # verify gives the same command
    assert f"run `pa-geo cache repair {data.parent}`" in capsys.readouterr().out
    _run_advice(capsys, line)
    steps = 0
    while main(argv) != 0:  # the repair kept what was readable; the errors now say what to embed
        steps += 1
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert steps == 1 and "run: pa-geo embed --config" in line, line
        _run_advice(capsys, line)


def test_entry_of_the_wrong_length_delete_then_embed_then_fit_succeeds(work: Path,
                                                                       capsys: pytest.CaptureFixture) -> None:
    cache = tk.fill_cache(work / "cache")
    store = EmbeddingStore(cache / store_dirname(tk.BACKBONE), readonly=False)
    protein = tk._structuredb(str(tk.DATA_ROOT))[0].protein
    store.put_many([(entry_key(store.meta.backbone_id, 0, content_digest(protein, "sequence")),
                     torch.zeros(len(protein) - 3, tk.EMB_DIM))])
    store.close()
    cfg = _config(work, cache)
    argv = ["fit", "--config", str(cfg), "--trainer.max_epochs=1"]
    line = _fails(capsys, argv)
    found = re.search(rf"protein {protein.id}: .* has {len(protein) - 3} rows for {len(protein)} residues .*delete "
                      r"(\S+), then run: pa-geo embed", line)
    assert found, line
    shutil.rmtree(found.group(1))
    _run_advice(capsys, line)
    assert main(argv) == 0


@pytest.mark.slow
def test_corrupt_entry_read_in_workers_is_one_line_in_a_subprocess_and_its_advice_works(work: Path) -> None:
    cache = tk.fill_cache(work / "cache")
    store = EmbeddingStore(cache / store_dirname(tk.BACKBONE), readonly=False)
    protein = tk._structuredb(str(tk.DATA_ROOT))[2].protein
    key = entry_key(store.meta.backbone_id, 0, content_digest(protein, "sequence"))
    raw = bytearray(store.get_raw_many([key])[0])
    raw[-5] ^= 0xFF  # one flipped byte in the rows: the entry's checksum fails
    store.put_raw_many([(key, bytes(raw))])
    store.close()
    cfg = _config(work, cache, workers=2)
    env = subprocess_env()

    def pa_geo(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*rk.PROGRAM, *args], env=env, capture_output=True, text=True,
                              timeout=600)

    truncated = work / "truncated"  # a copy cut by one page: refused in the main process, before workers start
    shutil.copytree(cache, truncated)
    data = truncated / store_dirname(tk.BACKBONE) / "data.mdb"
    os.truncate(data, data.stat().st_size - 4096)
    failed = pa_geo("fit", "--config", str(cfg), "--trainer.max_epochs=1",
                    f"--data.embeddings=[{{cache: {truncated}, backbone: onehot, layers: [0]}}]")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].startswith(f"pa-geo fit: error: {data.parent}: embedding cache is "
                                                             f"damaged: ")
    failed = pa_geo("fit", "--config", str(cfg), "--trainer.max_epochs=1")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert re.fullmatch(rf"pa-geo fit: error: {re.escape(str(store.path))}: protein {protein.id} layer 0: checksum "
                        rf"mismatch; to recompute it, run: pa-geo embed --config {re.escape(str(cfg))} "
                        r"--trainer.max_epochs=1 \(or add --data.embed_missing true to the command\)", line), line
    cmd = suggested(line)
    assert pa_geo(*cmd[1:], "--no-progress").returncode == 0
    again = pa_geo("fit", "--config", str(cfg), "--trainer.max_epochs=1")
    assert again.returncode == 0, again.stderr[-2000:]


def test_research_code_advice_embeds_the_file_the_protein_came_from(work: Path, capsys: pytest.CaptureFixture) -> None:
    from pa_geo.datasets.embedded import EmbeddingSource, attach_embeddings
    from pa_geo.io import read_fasta

    tk.fill_cache(work / "cache")
    fasta = work / "new.fasta"
    fasta.write_text(">mine\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ\n")
    protein = read_fasta(fasta)[0]
    source = EmbeddingSource(work / "cache", tk.BACKBONE, [0])
    with pytest.raises(Exception) as err:
        attach_embeddings(Data(num_nodes=len(protein)), protein, [source])
    line = str(err.value)
    assert suggested(line) == ["pa-geo", "embed", "--backbone", "onehot", "--layers", "0", "--cache",
                               str(work / "cache"), "--input", str(fasta)]
    _run_advice(capsys, line)
    graph = attach_embeddings(Data(num_nodes=len(protein)), protein, [copy.copy(source)])
    assert graph.emb_onehot_0.shape == (len(protein), tk.EMB_DIM)


@pytest.mark.parametrize("make", [lambda: __import__("pa_geo.errors").errors.CacheError("c/onehot: entry x is bad"),
                                  lambda: __import__("pa_geo.errors").errors.StructureError("a.pdb", "line 3: bad")])
def test_errors_from_dataloader_workers_stay_one_line(make, capsys: pytest.CaptureFixture) -> None:
    """torch re-raises a worker's exception as ``type(message with the traceback)``, or as a RuntimeError when the
    class takes other arguments (StructureError): both print the original line, exit code 1."""
    from torch._utils import ExceptionWrapper

    from pa_geo.train.cli import run_guarded

    original = make()

    def worker_failure() -> None:
        try:
            raise original
        except Exception:
            ExceptionWrapper(where="in DataLoader worker process 1").reraise()

    assert run_guarded("fit", worker_failure) == 1
    assert capsys.readouterr().err == f"pa-geo fit: error: {original}\n"

    def bug() -> None:
        raise RuntimeError("a bug, not a user error")

    with pytest.raises(RuntimeError, match="a bug"):  # not hidden: a traceback for the developers
        run_guarded("fit", bug)


def test_a_checkpoint_without_its_model_settings_predicts_with_its_config(work: Path,
                                                                         capsys: pytest.CaptureFixture) -> None:
    """``pa-geo predict --ckpt_path X --input ...`` on a checkpoint that does not describe its model suggests
    ``pa-geo predict --config <config> --ckpt_path X``: with the config it was trained with, that runs."""
    cfg = _config(work, tk.fill_cache(work / "cache"))
    argv = ["fit", "--config", str(cfg), "--trainer.max_epochs=1", "--trainer.enable_checkpointing=true",
            "--trainer.callbacks+=pytorch_lightning.callbacks.ModelCheckpoint",
            f"--trainer.callbacks.dirpath={work / 'ckpt'}", "--trainer.callbacks.filename=last",
            "--trainer.callbacks.monitor=step", "--trainer.callbacks.mode=max"]
    assert main(argv) == 0
    legacy = torch.load(work / "ckpt" / "last.ckpt", weights_only=True)
    for key in ("encoder", "head", "aux_heads"):
        legacy["hyper_parameters"].pop(key)
    torch.save(legacy, work / "legacy.ckpt")
    structure = sorted((tk.REPO / "data" / "pdb_dssp").glob("*.pdb.gz"))[0]
    capsys.readouterr()
    line = _fails(capsys, ["predict", "--ckpt_path", str(work / "legacy.ckpt"), "--input", str(structure),
                           "--output", str(work / "p.csv")])
    cmd = [str(cfg) if a == "<config>" else a for a in suggested(line)]  # the user names the config
    assert cmd == ["pa-geo", "predict", "--config", str(cfg), "--ckpt_path", str(work / "legacy.ckpt")]
    assert main(cmd[1:]) == 0


def test_the_embed_command_keeps_config_and_overrides_and_drops_the_subcommands_own_options() -> None:
    from pa_geo.train.cli import embed_arguments, embed_command

    argv = ["predict", "--config", "a b.yaml", "--ckpt_path", "x.ckpt", "--return_predictions=false",
            "--data.embeddings", "[{cache: c, backbone: near, layers: [8]}]", "--ckpt_path=y.ckpt"]
    assert embed_arguments(argv) == ["--config", "a b.yaml", "--data.embeddings", "[{cache: c, backbone: near, "
                                     "layers: [8]}]"]
    assert embed_command(argv) == ("pa-geo embed --config 'a b.yaml' --data.embeddings '[{cache: c, backbone: near, "
                                   "layers: [8]}]'")
