"""Readers of released upstream formats -> :class:`~pa_geo.datasets.records.TaskRecord` / proteins: ATOM3D LMDBs,
PEER / TAPE LMDBs (with a safe unpickler), FLIP CSVs, StructureDB ``.npz`` exports."""
