"""The embedding cache: content-addressed LMDB store, batched embed runner, merging, ``pa-geo embed``."""
from pa_geo.cache.keys import content_digest, entry_key, protein_keys, shard_of
from pa_geo.cache.merge import merge_caches
from pa_geo.cache.runner import EmbedSummary, embed_proteins, make_batches
from pa_geo.cache.store import CorruptEntry, EmbeddingStore, StoreMeta

__all__ = ["CorruptEntry", "EmbedSummary", "EmbeddingStore", "StoreMeta", "content_digest", "embed_proteins",
           "entry_key", "make_batches", "merge_caches", "protein_keys", "shard_of"]
