"""Trainable model parts: the multi-level :class:`ProteinAdapter`, the :class:`MultiScalePredictor` with its pooling
and conv registries, task heads, baselines (probes, summed-levels transformer, GearNet-Edge-style and GVP-GNN structure encoders),
and the parameter report."""
from pa_geo.nn.adapter import ProteinAdapter
from pa_geo.nn.baselines import MeanEmbeddingEncoder, ScalarMix, SummedLevelsTransformer
from pa_geo.nn.convs import available_convs, get_conv
from pa_geo.nn.encoder import AdapterEncoder
from pa_geo.nn.heads import ContactHead, GraphHead, LigandHead, MutationHead, NodeHead, ProteinPairHead
from pa_geo.nn.outputs import EncoderOutput
from pa_geo.nn.params import parameter_report
from pa_geo.nn.pooling import available_poolings, get_pooling
from pa_geo.nn.predictor import MultiScalePredictor
from pa_geo.nn.structure_encoders import GearNetEncoder, GVPEncoder

__all__ = ["AdapterEncoder", "ContactHead", "EncoderOutput", "GearNetEncoder", "GraphHead", "GVPEncoder", "LigandHead", "MeanEmbeddingEncoder", "MultiScalePredictor", "MutationHead", "NodeHead",
           "ProteinAdapter", "ProteinPairHead", "ScalarMix", "SummedLevelsTransformer", "available_convs",
           "available_poolings", "get_conv", "get_pooling", "parameter_report"]
