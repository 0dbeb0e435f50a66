"""Structure-encoder baselines on pa_geo residue graphs, drop-in replacements for
:class:`~pa_geo.nn.encoder.AdapterEncoder` (``forward(batch) -> EncoderOutput``, ``graph_dim``, ``node_dim``,
``required_batch_attributes``): a GearNet-Edge-style relational conv and a GVP-GNN, each optionally fed the frozen
sequence embeddings as node input (ESM-GearNet's serial fusion)."""
from pa_geo.nn.structure_encoders.gearnet import GearNetEncoder
from pa_geo.nn.structure_encoders.gvp import GVPEncoder

__all__ = ["GVPEncoder", "GearNetEncoder"]
