"""``pa-geo embed``: inputs, refusals, summary table, exit codes, sharding and ``--merge``."""
from __future__ import annotations

import argparse

import pytest

import tests.helpers.backbones  # noqa: F401  - registers the _test_slow backbone
from pa_geo.cache import embed_cli
from pa_geo.cache.store import EmbeddingStore
from pa_geo.errors import ConfigError


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    embed_cli.add_arguments(parser)
    return embed_cli.run(parser.parse_args(argv))


def test_embed_fasta_reports_bad_inputs_and_skips_cached(tmp_path, capsys):
    good = tmp_path / "good.fasta"
    good.write_text(">a\nACDEFGHIK\n>b\nLMNPQRSTVWY\n>c\nMKV\n")
    bad = tmp_path / "bad.fasta"
    bad.write_text(">x\nAC1D\n")
    cache = tmp_path / "cache"
    rc = _run(["--backbone", "_test_slow", "--layers", "1", "2", "--input", str(good), str(bad),
               str(tmp_path / "missing.pdb"), "--cache", str(cache), "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == 1
    refused = [line for line in err.splitlines() if line.startswith("refused")]
    assert len(refused) == 2 and "bad.fasta" in refused[0] and "missing.pdb" in refused[1]
    assert "embedded        3" in out and "already cached  0" in out and "refused         2" in out
    assert "residues/s" in out
    rc = _run(["--backbone", "_test_slow", "--input", str(good), "--cache", str(cache), "--layers", "1", "2",
               "--no-progress"])
    out, _ = capsys.readouterr()
    assert rc == 0 and "already cached  3" in out and "embedded        0" in out


def test_sharded_runs_then_merge(tmp_path, capsys):
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">s{i}\n{'ACDEFGHIKLMNPQRSTVWY'[i:] + 'A' * i}\n" for i in range(12)))
    for i in range(2):
        assert _run(["--backbone", "_test_slow", "--input", str(tmp_path), "--cache", str(tmp_path / f"c{i}"),
                     "--shard", f"{i}/2", "--no-progress", "--dtype", "fp32"]) == 0
    assert "shard" in capsys.readouterr().out
    assert _run(["--merge", str(tmp_path / "c0"), str(tmp_path / "c1"), "--cache", str(tmp_path / "all")]) == 0
    with EmbeddingStore(tmp_path / "all" / "_test_slow", readonly=True) as st:
        assert len(st) == 12 * 2 and st.meta.dtype == "fp32"


@pytest.mark.parametrize("argv, match", [
    (["--backbone", "_test_slow", "--input", "x.fasta", "--shard", "2/2"], "--shard"),
    (["--backbone", "_test_slow", "--input", "x.fasta", "--layers", "one"], "--layers"),
    (["--backbone", "no_such_model", "--input", "x.fasta"], "unknown backbone"),
    (["--input", "x.fasta"], "needs --backbone"),
])
def test_bad_options_are_one_line_config_errors(tmp_path, argv, match):
    with pytest.raises(ConfigError, match=match):
        _run(argv + ["--cache", str(tmp_path)])


def test_structure_inputs_and_unreadable_structure(tmp_path, capsys):
    from pathlib import Path

    from pa_geo.datasets.embedded import EmbeddingSource
    from pa_geo.io import read_structure

    data = Path(__file__).parents[1] / "data"
    good = data / "2cviA.pdb.gz"
    if not good.exists():
        pytest.skip("tests/data/2cviA.pdb.gz not present")
    bad = tmp_path / "broken.pdb"
    bad.write_text("HEADER    NOT REALLY A STRUCTURE\nEND\n")
    rc = _run(["--backbone", "_test_slow_struct", "--input", str(good), str(bad), "--cache", str(tmp_path / "c"),
               "--no-progress"])
    _, err = capsys.readouterr()
    assert rc == 1 and "refused" in err and "broken.pdb" in err
    p = read_structure(good)
    emb = EmbeddingSource(tmp_path / "c", "_test_slow_struct", [1]).read(p)[1]
    assert emb.shape == (len(p), 8)


def test_embed_hf_backbone_from_a_local_directory(tmp_path, capsys):
    import torch

    from pa_geo.backbones import get_backbone
    from pa_geo.cache.keys import protein_keys
    from pa_geo.cache.store import decode_entry
    from pa_geo.io import read_fasta
    from tests.helpers.hf_models import make_tiny_prot_t5

    model = make_tiny_prot_t5(tmp_path / "prot_t5")
    fasta = tmp_path / "in.fasta"
    fasta.write_text(">a\nMKTAYIAKQRQISFVKSHFSRQ\n>b\nMKUVLAAGZ\n")
    rc = _run(["--backbone", "hf", "--model", str(model), "--layers", "1", "2", "--input", str(fasta),
               "--cache", str(tmp_path / "cache"), "--dtype", "fp32", "--no-progress"])
    assert rc == 0 and "embedded        2" in capsys.readouterr().out
    bb = get_backbone("hf", model=str(model), layers=[1, 2])
    with EmbeddingStore(tmp_path / "cache" / "hf", readonly=True) as st:
        assert st.meta.backbone_id == bb.id and st.meta.dims == {1: 32, 2: 32}
        for p, ref in zip(read_fasta(fasta), bb.embed(read_fasta(fasta))):
            for layer, key in protein_keys(bb.id, bb.layers, p, "sequence").items():
                assert torch.allclose(decode_entry(st.get_raw_many([key])[0]), ref[layer], atol=1e-6)
