"""Exceptions that carry a one-line, user-facing message naming the file/record and the reason."""
from __future__ import annotations


class PaGeoError(Exception):
    """Base class of pa_geo's user-facing errors: ``str(err)`` is one line that says what to do."""


class StructureError(PaGeoError, ValueError):
    """A structure/sequence file that cannot be turned into a :class:`~pa_geo.io.Protein`.

    The message is ``"<file>: <reason>"`` on one line.
    """

    def __init__(self, source: str, reason: str) -> None:
        self.source = str(source)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.source}: {self.reason}")


class DatasetError(PaGeoError, ValueError):
    """A dataset file or record that is missing, malformed or of the wrong type (``"<file>[record]: reason"``)."""


class BackboneUnavailable(PaGeoError, RuntimeError):
    """A frozen backbone whose weights cannot be found offline; the message says where to put them."""


class CacheError(PaGeoError, RuntimeError):
    """An embedding cache that is missing entries or cannot be opened."""


class ConfigError(PaGeoError, ValueError):
    """A config naming an unknown backbone / pooling operator / task, or an inconsistent setting."""


class CheckpointError(PaGeoError, ValueError):
    """A checkpoint file that is missing, damaged, not a checkpoint, or does not fit the model built from the config
    (``"<file>: reason; what to do"``)."""
