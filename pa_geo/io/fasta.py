"""FASTA (plain or gzipped) -> sequence-only :class:`Protein` objects."""
from __future__ import annotations

import os
import re

from pa_geo.errors import StructureError
from pa_geo.io.protein import Protein
from pa_geo.io.sniff import bytes_to_text, read_bytes

# IUPAC protein letters (B, Z, J, U, O, X included); '*' (stop) is allowed only as the last character.
_VALID = re.compile(r"^[A-Z]+$")


def read_fasta(path: str | os.PathLike) -> list[Protein]:
    """Read every record of a FASTA file as a sequence-only Protein (``has_structure=False``).

    Record id = first whitespace-separated token of the header; the sequence is upper-cased, line breaks and
    spaces removed, one trailing ``*`` dropped. Each Protein has ``backbone [L, 4, 3]`` all NaN, residues numbered
    from 1, chain ``A`` (:meth:`Protein.from_sequence`).

    Raises:
        StructureError: ``"<file>: <reason>"`` for a missing/empty/binary file, text before the first header, an
        empty header or sequence, a character outside A-Z (naming record and line), or a duplicate id.
    """
    source = str(path)
    text = bytes_to_text(source, read_bytes(source))
    records: list[tuple[str, int, list[str]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith(">"):
            header = line[1:].split()
            if not header:
                raise StructureError(source, f"line {lineno}: empty FASTA header")
            records.append((header[0], lineno, []))
        elif not records:
            raise StructureError(source, f"line {lineno}: sequence before the first '>' header (not FASTA)")
        else:
            records[-1][2].append(line)
    if not records:
        raise StructureError(source, "no FASTA records")
    proteins, seen = [], set()
    for rid, lineno, lines in records:
        seq = "".join("".join(lines).split()).upper()
        if seq.endswith("*"):
            seq = seq[:-1]
        if not seq:
            raise StructureError(source, f"record {rid!r} (line {lineno}): empty sequence")
        if not _VALID.match(seq):
            bad = sorted({c for c in seq if not ("A" <= c <= "Z")})
            raise StructureError(source, f"record {rid!r} (line {lineno}): invalid sequence characters {bad}")
        if rid in seen:
            raise StructureError(source, f"record {rid!r} (line {lineno}): duplicate record id")
        seen.add(rid)
        proteins.append(Protein.from_sequence(rid, seq, source=source))
    return proteins
