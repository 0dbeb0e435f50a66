"""How the edited test structures in tests/data were made from real records (run once; kept for provenance).

Sources (all real): ``shared/data/pdb_dssp/2cviA.pdb.gz`` (PDB 2CVI chain A, from the MDAnalysis test
suite) and the ATOM3D-format LMDB ``shared/data/atom3d_legacy/pdb_generic`` (PDB 2HHB and 3MHT atom frames).
The variants other than altloc/segid are stored gzipped. Each variant changes only what its name says,
so a test can compare it with the unedited chain:

    2cviA_nmr.pdb      two MODELs; model 2 = model 1 shifted by +5 A in x
    2cviA_altloc.pdb   THR 10: altloc A occ 0.40 / B occ 0.60 (B shifted +0.5 A in x);
                       GLU 20: altloc A 0.50 / B 0.50 (B shifted): a tie
    2cviA_inscode.pdb  residues 79..82 renumbered 82, 82A, 82B, 82C (Kabat-style insertions)
    2cviA_mse.pdb      MET 1, 8, 19 -> HETATM MSE (SD -> SE, element SE); LEU 40 -> UNK;
                       two waters and a sulfate (HETATM, chain A) appended
    2cviA_hy36.pdb     atom serials from 100000 written in hybrid-36 (A0000...), residue numbers from 10000
                       (A000...)
    2cviA_segid.pdb    chain id blanked, segment id PROA in columns 73-76
    2cviA_gap.pdb      residues 40..44 deleted (a chain break at residue 45)
    2cviA_nan.pdb      every coordinate written as nan
    2hhb.pdb.gz        PDB 2HHB (4 chains, 4 HEM, 2 PO4, 221 waters) written from the ATOM3D frame
    3mht.pdb.gz        PDB 3MHT (protein chain A, DNA chains C/D, SAH, waters) written from the ATOM3D frame
    3mht.cif.gz        the same model written as mmCIF by biotite
"""
from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import lmdb

HERE = Path(__file__).parent
SHARED = HERE.resolve().parents[2] / "shared" / "data"  # the shared data folder next to the checkout
PLAIN = {"2cviA_altloc.pdb", "2cviA_segid.pdb"}


def _set(line: str, start: int, stop: int, text: str) -> str:
    line = line.ljust(80)
    return line[:start] + text.rjust(stop - start)[: stop - start] + line[stop:]


def _resnum(line: str) -> int:
    return int(line[22:26])


def _shift_x(line: str, dx: float) -> str:
    return _set(line, 30, 38, f"{float(line[30:38]) + dx:8.3f}")


def _hy36(value: int, width: int) -> str:
    from biotite.structure.io.pdb.hybrid36 import encode_hybrid36

    return encode_hybrid36(value, width)


def variants(lines: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    out["2cviA_nmr.pdb"] = (["MODEL        1"] + lines + ["ENDMDL", "MODEL        2"]
                            + [_shift_x(ln, 5.0) for ln in lines] + ["ENDMDL", "END"])
    alt = []
    for ln in lines:
        if _resnum(ln) in (10, 20):
            occ_a, occ_b = (0.40, 0.60) if _resnum(ln) == 10 else (0.50, 0.50)
            alt.append(_set(_set(ln, 16, 17, "A"), 54, 60, f"{occ_a:6.2f}"))
            alt.append(_set(_set(_shift_x(ln, 0.5), 16, 17, "B"), 54, 60, f"{occ_b:6.2f}"))
        else:
            alt.append(ln)
    out["2cviA_altloc.pdb"] = alt
    renumber = {79: (82, ""), 80: (82, "A"), 81: (82, "B"), 82: (82, "C")}
    out["2cviA_inscode.pdb"] = [_set(_set(ln, 22, 26, f"{renumber[_resnum(ln)][0]:4d}"), 26, 27,
                                     renumber[_resnum(ln)][1] or " ") if _resnum(ln) in renumber else ln
                                for ln in lines]
    mse = []
    for ln in lines:
        r = _resnum(ln)
        if r in (1, 8, 19):
            ln = "HETATM" + _set(ln, 17, 20, "MSE")[6:]
            if ln[12:16] == " SD ":
                ln = _set(_set(ln, 12, 16, "SE  "), 76, 78, "SE")
        elif r == 40:
            ln = _set(ln, 17, 20, "UNK")
        mse.append(ln)
    x, y, z = (float(lines[-1][30:38]), float(lines[-1][38:46]), float(lines[-1][46:54]))
    het = [("HOH", " O  ", "O", 101, 3.0), ("HOH", " O  ", "O", 102, 6.0), ("SO4", " S  ", "S", 201, 9.0),
           ("SO4", " O1 ", "O", 201, 10.4)]
    for k, (rn, an, el, num, d) in enumerate(het):
        mse.append(f"HETATM{700 + k:5d} {an} {rn} A{num:4d}    {x + d:8.3f}{y:8.3f}{z:8.3f}  1.00 30.00"
                   f"          {el:>2}")
    out["2cviA_mse.pdb"] = mse
    out["2cviA_hy36.pdb"] = [_set(_set(ln, 6, 11, _hy36(100000 + i, 5)), 22, 26, _hy36(10000 + _resnum(ln) - 1, 4))
                             for i, ln in enumerate(lines)]
    out["2cviA_segid.pdb"] = [_set(_set(ln, 21, 22, " "), 72, 76, "PROA") for ln in lines]
    out["2cviA_gap.pdb"] = [ln for ln in lines if not 40 <= _resnum(ln) <= 44]
    out["2cviA_nan.pdb"] = [_set(_set(_set(ln, 30, 38, "nan"), 38, 46, "nan"), 46, 54, "nan") for ln in lines]
    return out


def frame_to_pdb(item: dict) -> str:
    """PDB text from an ATOM3D atoms frame (split-orient JSON dict)."""
    cols = item["atoms"]["columns"]
    rows = [dict(zip(cols, r)) for r in item["atoms"]["data"]]
    out = []
    for a in rows:
        rec = "ATOM  " if a["hetero"] == " " else "HETATM"
        out.append(f"{rec}{int(a['serial_number']):5d} {a['fullname']:<4}{a['altloc']:1}{a['resname']:>3} "
                   f"{a['chain']:1}{int(a['residue']):4d}{a['insertion_code']:1}   "
                   f"{a['x']:8.3f}{a['y']:8.3f}{a['z']:8.3f}{min(a['occupancy'], 1.0):6.2f}{a['bfactor']:6.2f}"
                   f"      {a['segid']:<4}{a['element']:>2}")
    return "\n".join(out + ["END", ""])


def main() -> None:
    lines = [ln.rstrip("\n") for ln in gzip.open(SHARED / "pdb_dssp/2cviA.pdb.gz", "rt")
             if ln.startswith(("ATOM", "HETATM"))]
    for name, text in variants(lines).items():  # gzipped (mtime 0: reproducible bytes) except two plain ones
        data = ("\n".join(text) + "\n").encode()
        if name in PLAIN:
            (HERE / name).write_bytes(data)
        else:
            (HERE / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
    env = lmdb.open(str(SHARED / "atom3d_legacy/pdb_generic"), readonly=True, lock=False, subdir=True)
    with env.begin() as txn:
        items = [json.loads(gzip.decompress(txn.get(str(i).encode()))) for i in range(int(txn.get(b"num_examples")))]
    for item in items:
        name = {"2hhb.pdb": "2hhb", "pdb3mht.pdb": "3mht"}.get(item["id"])
        if name:
            text = frame_to_pdb(item)
            (HERE / f"{name}.pdb.gz").write_bytes(gzip.compress(text.encode(), mtime=0))
            if name == "3mht":
                from biotite.structure.io import pdb, pdbx

                cif = pdbx.CIFFile()
                pdbx.set_structure(cif, pdb.PDBFile.read(io.StringIO(text)).get_structure(model=1))
                buf = io.StringIO()
                cif.write(buf)
                (HERE / "3mht.cif.gz").write_bytes(gzip.compress(buf.getvalue().encode(), mtime=0))


if __name__ == "__main__":
    main()
