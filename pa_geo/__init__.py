"""pa_geo: parameter-efficient protein representation learning on graphs.

Pipeline (one subpackage per stage): io -> graphs -> backbones/cache -> datasets -> nn -> tasks -> train.
"""
from pa_geo.errors import (BackboneUnavailable, CacheError, ConfigError, DatasetError, PaGeoError,
                           StructureError)

__version__ = "0.1.0"
__all__ = ["BackboneUnavailable", "CacheError", "ConfigError", "DatasetError", "PaGeoError", "StructureError",
           "__version__"]
