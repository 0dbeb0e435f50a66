"""Datasets: the shipped real data (StructureDB, solubility), ATOM3D LMDBs, PEER formats, the on-disk example store
that training reads lazily, on-disk graph datasets, and the transform attaching cached embeddings to graphs."""
from pa_geo.datasets.atom3d import Atom3DLMDB, lmdb_summary
from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource, attach_embeddings, stamp_digests
from pa_geo.datasets.example_store import ExampleStore, StoredDataset, build_store
from pa_geo.datasets.graph_dataset import GraphDataset
from pa_geo.datasets.records import TaskRecord

__all__ = ["Atom3DLMDB", "AttachEmbeddings", "EmbeddingSource", "ExampleStore", "GraphDataset", "StoredDataset",
           "TaskRecord", "attach_embeddings", "build_store", "lmdb_summary", "stamp_digests"]
