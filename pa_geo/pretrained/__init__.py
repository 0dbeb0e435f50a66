"""Trained models that ship inside the package: 8-state DSSP + relative solvent accessibility per residue.

    pa_geo.pretrained.available()            # ['ss8-rsa', 'ss8-rsa-ca'] (those whose checkpoint is installed)
    model = pa_geo.pretrained.load("ss8-rsa")
    for batch in model.batches(["my/a.pdb"]):  # PyG batches of residue graphs with their embeddings
        out = model(batch)                     # ss8_logits / ss8_probs [N, 8] (H G I E B T S C), rsa [N]

``ss8-rsa`` reads full backbones (N, CA, C, O), ``ss8-rsa-ca`` CA traces (cryo-EM traces, coarse-grained models);
the variant is chosen by name (:mod:`pa_geo.pretrained.registry`). On the command line: ``pa-geo predict
--pretrained ss8-rsa --input my/*.pdb --output preds.csv`` (:mod:`pa_geo.pretrained.predict_cli`). The model card
is ``docs/models/ss8-rsa.md``; :mod:`pa_geo.pretrained.tasks` holds the tasks they were trained on and
:mod:`pa_geo.pretrained.scoring` scores predictions against reference DSSP.
"""
from pa_geo.pretrained.model import PretrainedModel, default_cache, load
from pa_geo.pretrained.registry import MODELS, ShippedModel, available, get_model

__all__ = ["MODELS", "PretrainedModel", "ShippedModel", "available", "default_cache", "get_model", "load"]
