"""Write the 8-state DSSP reference of the shipped ``data/pdb_dssp`` chains with the DSSP program itself.

    apt-get install dssp          # mkdssp 4.x (Debian package dssp)
    python scripts/dssp8_reference.py [--data data/pdb_dssp] [--mkdssp mkdssp]

For every ``<id>.pdb.gz`` it runs ``mkdssp`` (a HEADER and a CRYST1 line are prepended where the file has none:
mkdssp 4 refuses PDB files without them) and writes ``dssp8.tsv`` next to the files: ``id``, ``dssp8`` (one letter
per residue as :func:`pa_geo.io.read_structure` reads the chain: H G I E B T S C; ``-`` where mkdssp gave no
assignment, e.g. a residue without a complete backbone) and ``agree3`` (the share of residues whose 3-state
reduction agrees with the shipped ``<id>.pdb.dssp`` string, a check that both describe the same residues).
DSSP 4's polyproline letter ``P`` is coil (``C``), as in DSSP 2 / 3 and in the StructureDB labels.
"""
from __future__ import annotations

import argparse
import gzip
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from pa_geo.io import read_structure

SS8 = "HGIEBTSC"
TO3 = {"H": "H", "G": "H", "I": "H", "E": "E", "B": "E"}


def _pdb_text(path: Path) -> str:
    text = gzip.open(path, "rt").read() if path.suffix == ".gz" else path.read_text()
    lines = text.splitlines()
    head = []
    if not any(line.startswith("HEADER") for line in lines):
        head.append(f"HEADER    PROTEIN{' ' * 33}01-JAN-00   {path.name[:4].upper()}")
    if not any(line.startswith("CRYST1") for line in lines):
        head.append("CRYST1    1.000    1.000    1.000  90.00  90.00  90.00 P 1           1")
    return "\n".join(head + lines) + "\n"


def run_mkdssp(path: Path, mkdssp: str = "mkdssp") -> dict[tuple[str, int, str], str]:
    """``{(chain, residue number, insertion code): DSSP letter}`` of one structure file (blank -> ``C``,
    ``P`` -> ``C``)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in.pdb", Path(tmp) / "out.dssp"
        src.write_text(_pdb_text(path))
        subprocess.run([mkdssp, "--output-format", "dssp", str(src), str(out)], check=True, capture_output=True)
        lines = out.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  #  RESIDUE")) + 1
    states = {}
    for line in lines[start:]:
        if line[13] == "!":  # chain break marker
            continue
        number, icode, chain, letter = int(line[5:10]), line[10].strip(), line[11], line[16]
        states[(chain, number, icode)] = letter if letter in SS8[:-1] else "C"
    return states


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/pdb_dssp")
    parser.add_argument("--mkdssp", default="mkdssp")
    args = parser.parse_args(argv)
    folder = Path(args.data)
    rows = []
    for path in sorted(folder.glob("*.pdb.gz")):
        pid = path.name.removesuffix(".pdb.gz")
        protein = read_structure(path)
        states = run_mkdssp(path, args.mkdssp)
        dssp8 = "".join(states.get((c, int(n), i), "-") for c, n, i in
                        zip(protein.chain_ids, protein.residue_numbers, protein.insertion_codes))
        ref3 = (folder / f"{pid}.pdb.dssp").read_text().split()[0]
        ours3 = "".join(TO3.get(s, "-") for s in dssp8)
        scored = [k for k, s in enumerate(dssp8) if s != "-"]
        agree = float(np.mean([ours3[k] == ref3[k] for k in scored])) if len(ref3) == len(dssp8) else float("nan")
        rows.append((pid, dssp8, agree))
        print(f"{pid}: {len(dssp8)} residues, {len(dssp8) - len(scored)} unassigned, 3-state agreement "
              f"with the shipped string {agree:.3f}", flush=True)
    out = folder / "dssp8.tsv"
    out.write_text("id\tdssp8\tagree3\n" + "".join(f"{p}\t{s}\t{a:.4f}\n" for p, s, a in rows))
    print(f"wrote {out} ({len(rows)} chains; mean 3-state agreement {np.nanmean([r[2] for r in rows]):.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
