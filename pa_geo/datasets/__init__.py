"""Datasets: the shipped real data (StructureDB, solubility), ATOM3D LMDBs, PEER formats, on-disk graph datasets and
cached embeddings attached to graphs."""
from pa_geo.datasets.atom3d import Atom3DLMDB, lmdb_summary
from pa_geo.datasets.embedded import AttachEmbeddings, EmbeddingSource, attach_embeddings
from pa_geo.datasets.graph_dataset import GraphDataset
from pa_geo.datasets.records import TaskRecord

__all__ = ["Atom3DLMDB", "AttachEmbeddings", "EmbeddingSource", "GraphDataset", "TaskRecord", "attach_embeddings",
           "lmdb_summary"]
