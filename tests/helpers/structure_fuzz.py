"""Seeded mutations of real PDB / mmCIF files and how ``read_structure`` takes each one.

Shared by ``tests/io/test_structure_fuzz.py`` (a few hundred mutations) and ``benchmarks/fuzz.py`` (10,000).

Outcomes: ``parsed-same`` (same residues and backbone as the intact file), ``parsed-changed``, ``refused`` (a
one-line :class:`~pa_geo.errors.StructureError`) and ``other-exception`` (anything else, a multi-line message
included: always a bug). A mutation ``keeps_atoms`` when every atom record of the intact file is still there, in
order (lines may be added around them): then the reader must return the same residues or refuse.
"""
from __future__ import annotations

import gzip
import random
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pa_geo.errors import StructureError
from pa_geo.io import Protein, read_structure
from tests.helpers import TEST_DATA as DATA
SEEDS = ("2cviA.pdb.gz", "2cviA_nmr.pdb.gz", "2cviA_mse.pdb.gz", "2cviA_altloc.pdb", "2cviA_inscode.pdb.gz",
         "1mr1D.pdb.gz", "atom3d/1ahsA.pdb.gz", "3mht.cif.gz")
KINDS = ("truncate", "byte_flip", "dup_line", "del_line", "stray_model", "stray_endmdl", "huge_coord", "nan_coord")
OUTCOMES = ("parsed-same", "parsed-changed", "refused", "other-exception")
_HUGE = ("3.0e38", "1.0e+06", "-1.0e+05", "99999.9", "-3e38")


@dataclass(frozen=True)
class Seed:
    """One intact real file: ``name``, ``suffix`` (``.pdb`` / ``.cif``), its text and what the reader makes of it."""

    name: str
    suffix: str
    text: str
    protein: Protein

    @property
    def atom_lines(self) -> list[str]:
        return atom_records(self.text)


def atom_records(text: str) -> list[str]:
    """ATOM / HETATM lines (PDB records, or mmCIF ``_atom_site`` rows, which start with ``group_PDB``)."""
    return [line for line in text.splitlines() if line.startswith(("ATOM", "HETATM"))]


def load_seeds() -> list[Seed]:
    """The intact seed files (they must parse)."""
    out = []
    for name in SEEDS:
        raw = (DATA / name).read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
        out.append(Seed(name, ".cif" if ".cif" in name else ".pdb", text, read_structure(DATA / name)))
    return out


def _coordinate_line(line: str, cif: bool, value: str, rng: random.Random) -> str:
    axis = rng.randrange(3)
    if cif:  # Cartn_x, y, z are the 14th-16th values of these rows
        fields = line.split()
        fields[13 + axis] = value
        return " ".join(fields)
    return line[:30 + 8 * axis] + value.strip().rjust(8)[:8] + line[38 + 8 * axis:]


def mutate(seed: Seed, kind: str, rng: random.Random) -> str:
    """The text of ``seed`` with one mutation of ``kind`` (see :data:`KINDS`), drawn from ``rng``."""
    text, cif = seed.text, seed.suffix == ".cif"
    lines = text.splitlines()
    if kind == "truncate":
        return text[:rng.randrange(1, len(text))]
    if kind == "byte_flip":
        raw = bytearray(text.encode())
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        return raw.decode("latin-1")
    if kind in ("dup_line", "stray_model", "stray_endmdl"):
        new = {"dup_line": lines[rng.randrange(len(lines))], "stray_model": f"MODEL     {rng.randint(1, 9):>4}",
               "stray_endmdl": "ENDMDL"}[kind]
        at = rng.randrange(len(lines) + 1)
        return "\n".join(lines[:at] + [new] + lines[at:]) + "\n"
    if kind == "del_line":
        at = rng.randrange(len(lines))
        return "\n".join(lines[:at] + lines[at + 1:]) + "\n"
    atoms = [i for i, line in enumerate(lines) if line.startswith(("ATOM", "HETATM"))]
    i = rng.choice(atoms)
    value = rng.choice(_HUGE) if kind == "huge_coord" else "nan"
    lines[i] = _coordinate_line(lines[i], cif, value, rng)
    return "\n".join(lines) + "\n"


def keeps_atoms(seed: Seed, text: str) -> bool:
    """Whether every atom record of ``seed`` is still in ``text``, in order (others may have been added)."""
    want = seed.atom_lines
    k = 0
    for line in atom_records(text):
        if k < len(want) and line == want[k]:
            k += 1
    return k == len(want)


def same_residues(a: Protein, b: Protein) -> bool:
    """Same sequence cut into the same chains (residue labels may be relabelled, nothing dropped or reordered)."""
    return a.sequence == b.sequence and [len(s) for s in a.chain_sequences.values()] == [
        len(s) for s in b.chain_sequences.values()]


def outcome(seed: Seed, path: Path) -> tuple[str, str, bool]:
    """``(outcome, detail, same residues)`` of reading the mutated file at ``path`` (see :data:`OUTCOMES`)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dropped NaN atoms are reported as warnings: allowed
            got = read_structure(path)
    except StructureError as err:
        msg = str(err)
        if "\n" in msg or not msg.startswith(f"{path}: "):
            return "other-exception", f"StructureError not one line naming the file: {msg!r}", False
        return "refused", msg, False
    except Exception as err:  # noqa: BLE001 - what the fuzzer looks for
        return "other-exception", f"{type(err).__name__}: {err}", False
    residues = same_residues(got, seed.protein)
    same = residues and np.allclose(got.backbone, seed.protein.backbone, equal_nan=True)
    return ("parsed-same" if same else "parsed-changed"), got.sequence[:20], residues


def run(seeds: list[Seed], n: int, seed: int, workdir: Path):
    """Yield ``(seed name, kind, keeps_atoms, outcome, detail, same residues)`` for ``n`` seeded mutations, kinds
    and seed files taken in turn."""
    rng = random.Random(seed)
    for i in range(n):
        s = seeds[i % len(seeds)]
        kind = KINDS[(i // len(seeds)) % len(KINDS)]
        text = mutate(s, kind, rng)
        path = workdir / f"m{i % 64}{s.suffix}"
        path.write_bytes(text.encode("latin-1", errors="replace"))
        yield (s.name, kind, keeps_atoms(s, text), *outcome(s, path))
