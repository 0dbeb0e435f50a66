"""Fit embeds what it needs: missing proteins only, per source; structure level dropped without structures."""
from __future__ import annotations

import logging

import pytest

from pa_geo.cache.ensure import SourceConfig, build_backbones, embed_missing, keep_levels
from pa_geo.datasets.embedded import EmbeddingSource
from pa_geo.errors import ConfigError, DatasetError
from tests.helpers.backbones import LOG_ENV
from tests.helpers.proteins import random_proteins, with_structure

SOURCES = [{"cache": None, "backbone": "_test_slow", "layers": [1]},
           {"cache": None, "backbone": "_test_slow_struct", "layers": [2]}]


def sources(root):
    return [dict(s, cache=str(root)) for s in SOURCES]


def test_embeds_only_what_is_missing_in_chunks(tmp_path, monkeypatch):
    log = tmp_path / "embedded.txt"
    monkeypatch.setenv(LOG_ENV, str(log))
    proteins = [with_structure(p, seed=i) for i, p in enumerate(random_proteins(7, seed=1))]
    built = build_backbones(sources(tmp_path / "cache"), device="cpu")
    first = embed_missing(built, proteins[:4] + [DatasetError("t.csv line 9 (id x): broken")], progress=False,
                          chunk=3)
    assert first.embedded == 8 and first.refused == []  # 4 proteins x 2 backbones, the error passed over
    second = embed_missing(built, iter(proteins), progress=False, chunk=3)
    assert second.embedded == 6  # only the 3 new proteins, for both backbones
    assert sum(s.cached for s in second.summaries.values()) == 8
    done = log.read_text().split()
    assert sorted(done) == sorted([p.id for p in proteins] * 2)
    for src in sources(tmp_path / "cache"):  # everything readable through the data path's reader
        reader = EmbeddingSource(src["cache"], src["backbone"], src["layers"])
        assert all(reader.read(p)[src["layers"][0]].shape[0] == len(p) for p in proteins)


def test_refused_proteins_are_logged_one_line_each(tmp_path, caplog):
    built = build_backbones([{"cache": str(tmp_path), "backbone": "_test_slow_struct", "layers": [1]}], "cpu")
    seq_only = random_proteins(2, seed=3)
    with caplog.at_level(logging.WARNING, logger="pa_geo.cache.ensure"):
        report = embed_missing(built, seq_only, progress=False)
    assert [(b, pid) for b, pid, _ in report.refused] == [("_test_slow_struct", "p0"), ("_test_slow_struct", "p1")]
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("refused p0 (_test_slow_struct): _test_slow_struct needs coordinates")


def test_structure_level_left_out_without_structures(tmp_path, caplog):
    given = sources(tmp_path)
    with caplog.at_level(logging.INFO, logger="pa_geo.cache.ensure"):
        kept, dropped = keep_levels(given, ["sequence"], where="labels.csv has no structures")
    assert kept == given[:1] and [s.backbone for s in dropped] == ["_test_slow_struct"]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line == ("labels.csv has no structures: leaving out the structure level (_test_slow_struct layer(s) 2); "
                    "the model uses _test_slow")
    with pytest.raises(ConfigError, match="every embedding source is structure-level"):
        keep_levels(given[1:], ["sequence"], where="x")
    assert keep_levels(given, ["structure"], where="x")[0] == given[1:]


def test_source_config_from_dicts_and_sources():
    assert SourceConfig.of({"cache": "c", "backbone": "near", "layers": 8}) == SourceConfig("c", "near", (8,))
    assert SourceConfig.of(EmbeddingSource("c", "near", [8])) == SourceConfig("c", "near", (8,))
    hf = SourceConfig.of({"cache": "c", "backbone": "hf", "layers": [6], "options": {"model": "m"}})
    assert hf.options == {"model": "m"} and hf.as_dict() == {"cache": "c", "backbone": "hf", "layers": [6],
                                                             "options": {"model": "m"}}
    with pytest.raises(ConfigError, match="needs cache, backbone and layers"):
        SourceConfig.of({"backbone": "near"})
