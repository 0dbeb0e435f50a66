"""PEER protocol points on files in the released formats: AAV's mutated-region crop (FLIP CSV), BindingDB's split
order, and a BindingDB record whose SMILES cannot be parsed (PEER LMDB)."""
from __future__ import annotations

from pathlib import Path

import pytest

from pa_geo.formats.peer import PEER_LMDB_SOURCES
from pa_geo.formats.peer_flip import load_flip
from pa_geo.formats.tape_lmdb import write_tape_lmdb
from pa_geo.errors import DatasetError
from pa_geo.graphs.ligand import smiles_graph
from pa_geo.tasks import get_task

# AAV2 capsid VP1 (UniProt P03135, 735 aa): the wild type FLIP's AAV variants are written on
AAV2_VP1 = ("MAADGYLPDWLEDTLSEGIRQWWKLKPGPPPPKPAERHKDDSRGLVLPGYKYLGPFNGLD"
            "KGEPVNEADAAALEHDKAYDRQLDSGDNPYLKYNHADAEFQERLKEDTSFGGNLGRAVFQ"
            "AKKRVLEPLGLVEEPVKTAPGKKRPVEHSPVEPDSSSGTGKAGQQPARKRLNFGQTGDAD"
            "SVPDPQPLGQPPAAPSGLGTNTMATGSGAPMADNNEGADGVGNSSGNWHCDSTWMGDRVI"
            "TTSTRTWALPTYNNHLYKQISSQSGASNDNHYFGYSTPWGYFDFNRFHCHFSPRDWQRLI"
            "NNNWGFRPKRLNFKLFNIQVKEVTQNDGTTTIANNLTSTVQVFTDSEYQLPYVLGSAHQG"
            "CLPPFPADVFMVPQYGYLTLNNGSQAVGRSSFYCLEYFPSQMLRTGNNFTFSYTFEDVPF"
            "HSSYAHSQSLDRLMNPLIDQYLYYLSRTNTPSGTTTQSRLQFSQAGASDIRDQSRNWLPG"
            "PCYRQQRVSKTSADNNNSEYSWTGATKYHLNGRDSLVNPGPAMASHKDDEEKFFPQSGVL"
            "IFGKQGSEKTNVDIEKVMITDEEEIRTTNPVATEQYGSVSTNLQRGNRQAATADVNTQGV"
            "LPGMVWQDRDVYLQGPIWAKIPHTDGHFHPSPLMGGFGLKHPPPQILIKNTPVPANPSTT"
            "FSAAKFASFITQYSTGQVSVEIEWELQKENSKRWNPEIQYTSNYNKSVNVDFTVDTNGVY"
            "SEPRPIGTRYLTRNL")


def test_aav_keeps_peers_mutated_region(tmp_path: Path) -> None:
    assert len(AAV2_VP1) == 735 and AAV2_VP1[560:588] == "DEEEIRTTNPVATEQYGSVSTNLQRGNR"  # FLIP's 561-588
    insertion = AAV2_VP1[:575] + "GW" + AAV2_VP1[575:579] + "K" + AAV2_VP1[580:]  # +2 residues, one substitution
    deletion = AAV2_VP1[:570] + AAV2_VP1[573:]  # -3 residues
    rows = [(AAV2_VP1, 0.5, "train", "False"), (insertion, -1.25, "train", "True"), (deletion, 2.0, "test", "")]
    csv = tmp_path / "aav" / "splits" / "two_vs_many.csv"
    csv.parent.mkdir(parents=True)
    csv.write_text("sequence,target,set,validation\n" + "".join(f"{s},{t},{w},{v}\n" for s, t, w, v in rows))
    spec = get_task("aav")
    assert spec.options["keep_mutation_region"] is True
    (wt,), (ins,), (dele,) = (spec.load(tmp_path, split) for split in ("train", "valid", "test"))
    # PEER: region = slice(474, 674): 0-based, end exclusive, i.e. 1-based residues 475..674, 200 of them
    assert [len(r.proteins[0]) for r in (wt, ins, dele)] == [200, 200, 200]
    assert wt.proteins[0].sequence == AAV2_VP1[474:674]
    assert wt.proteins[0].sequence.startswith("RNWLPG") and wt.proteins[0].sequence.endswith("FITQYS")
    assert ins.proteins[0].sequence == insertion[474:674] and "GW" in ins.proteins[0].sequence
    assert ins.proteins[0].sequence.endswith(AAV2_VP1[670:672])  # a fixed slice: the indels shift its end
    assert dele.proteins[0].sequence == deletion[474:674] and dele.label == 2.0
    (full,) = load_flip("aav", tmp_path, "train")  # without the crop: the whole VP1
    assert full.proteins[0].sequence == AAV2_VP1
    csv.write_text("sequence,target,set,validation\nMKTAYIAK,0.5,train,False\n")
    with pytest.raises(DatasetError, match=r"row 2\]: sequence of 8 residues ends before the mutated region"):
        spec.load(tmp_path, "train")


def test_bindingdb_tests_on_holdout_first(tmp_path: Path) -> None:
    spec = get_task("bindingdb")
    # TorchDrug's BindingDB.splits = train, valid, random_test, holdout_test; PEER's configs test on holdout_test
    assert spec.splits == ["train", "valid", "holdout_test", "random_test"]
    assert spec.test_splits[0] == "holdout_test"
    path = tmp_path / PEER_LMDB_SOURCES["bindingdb"].pattern.format(split="holdout_test")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tape_lmdb(path, [{"target": "MKTAYIAKQRQISFVKSHFSRQ", "drug": "CC(=O)Oc1ccccc1C(=O)O", "affinity": 6.25}])
    (rec,) = spec.load(tmp_path, spec.test_splits[0])
    assert rec.label == 6.25


def test_unparseable_smiles_names_its_record(tmp_path: Path) -> None:
    path = tmp_path / PEER_LMDB_SOURCES["bindingdb"].pattern.format(split="train")
    path.parent.mkdir(parents=True, exist_ok=True)
    drugs = ["CC(=O)Oc1ccccc1C(=O)O", "CC(=O)Oc1ccccc1C(=O", "c1ccccc", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"]
    write_tape_lmdb(path, [{"target": "MKTAYIAKQRQISFVKSHFSRQ", "drug": d, "affinity": 5.0 + i}
                           for i, d in enumerate(drugs)])
    records = get_task("bindingdb").load(tmp_path, "train")
    assert len(records) == 4  # reading the split does not parse ligands
    built, failed = [], []
    for rec in records:  # what the data path does when it builds each record's ligand graph
        try:
            built.append(smiles_graph(rec.extra["smiles"], rec.id).num_nodes)
        except DatasetError as err:
            failed.append(str(err))
    assert built == [13, 14]  # aspirin, caffeine
    assert len(failed) == 2 and all("\n" not in f for f in failed)
    assert failed[0].startswith(f"{records[1].id}: cannot parse SMILES") and "unbalanced" in failed[0]
    assert failed[1].startswith(f"{records[2].id}: cannot parse SMILES 'c1ccccc'")
