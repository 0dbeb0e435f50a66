"""Label tables built from the shipped ``data/pdb_dssp`` chains (real PDB files + their DSSP strings), for tests of
the table task, its templates and prediction from checkpoints."""
from __future__ import annotations

from pathlib import Path

from tests.helpers import DATA

PDB_DSSP = DATA / "pdb_dssp"


def dssp_chains(n: int, start: int = 0) -> list[tuple[str, Path, str]]:
    """``(id, structure file, 3-state DSSP string H / E / -)`` of ``n`` shipped chains (sorted by id, from
    ``start``)."""
    files = sorted(PDB_DSSP.glob("*.pdb.dssp"))[start:start + n]
    out = []
    for f in files:
        pid = f.name.split(".")[0]
        out.append((pid, PDB_DSSP / f"{pid}.pdb.gz", f.read_text().split()[0]))
    return out


def write_dssp_table(folder: Path, n: int = 8, level: str = "residue", type: str = "multiclass",
                     structures: bool = True, split: bool = True, name: str = "labels.csv") -> Path:
    """A table of ``n`` chains in ``folder``: ``id``, ``structure`` (absolute paths) or ``sequence``, ``label`` and,
    with ``split``, a ``split`` column (every 4th row valid, the next test, the rest train).

    Labels: residue level -- the DSSP string (classification) or ``;``-joined per-residue values derived from it
    (regression: H 1.0, E 0.5, - 0.0); protein level -- ``helix`` / ``strand`` by which state is more frequent
    (classification) or the helix fraction (regression).
    """
    from pa_geo.io import read_structure

    folder.mkdir(parents=True, exist_ok=True)
    header = ["id", "structure" if structures else "sequence", "label"] + (["split"] if split else [])
    rows = [",".join(header)]
    for k, (pid, path, dssp) in enumerate(dssp_chains(n)):
        if level == "residue":
            label = dssp if type != "regression" else ";".join({"H": "1.0", "E": "0.5"}.get(c, "0.0") for c in dssp)
        elif type == "regression":
            label = f"{dssp.count('H') / len(dssp):.4f}"
        else:
            label = "helix" if dssp.count("H") > dssp.count("E") else "strand"
        where = str(path) if structures else read_structure(path).sequence
        cells = [pid, where, label] + ([("valid", "test")[k % 4 - 1] if k % 4 in (1, 2) else "train"] if split else [])
        rows.append(",".join(cells))
    table = folder / name
    table.write_text("\n".join(rows) + "\n")
    return table
