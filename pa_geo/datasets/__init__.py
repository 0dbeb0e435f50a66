"""Datasets: task records, the on-disk example store that training reads lazily, the transform attaching cached
embeddings to graphs, and splits that keep groups (PDB entries, sequence clusters) together. Readers of upstream
formats are :mod:`pa_geo.formats`; label tables are :mod:`pa_geo.tables`."""
from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource, attach_embeddings, stamp_digests
from pa_geo.datasets.example_store import ExampleStore, StoredDataset, build_store
from pa_geo.datasets.records import TaskRecord

__all__ = ["AttachEmbeddings", "EmbeddingSource", "ExampleStore", "StoredDataset", "TaskRecord", "attach_embeddings",
           "build_store", "stamp_digests"]
