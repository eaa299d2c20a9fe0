"""The one exception hierarchy of radbridge.

Every error radbridge raises on purpose derives from :class:`RadbridgeError` and
from the built-in exception it resembles, so ``except ValueError`` keeps working
for callers who do not know radbridge. Messages follow one shape: *where* (the
file or peer), *what* (the DICOM attribute or argument), and *what to do*.

::

    RadbridgeError (Exception)
    ├── OptionalDependencyError (ImportError)   an extra is not installed
    ├── ConfigError (ValueError)                a configuration file or option is wrong
    ├── DicomReadError (ValueError)             a file cannot be read as the object asked for
    │   ├── NotDicomError                       not a DICOM file at all
    │   ├── MissingAttributeError               a required attribute is absent or empty
    │   ├── InvalidAttributeError               an attribute holds a value that cannot be used
    │   │   └── UnknownTermError                a name is not in radbridge's terminology table
    │   └── UnsupportedObjectError              a valid object radbridge does not handle
    ├── GeometryError (ValueError)              instances do not form one consistent volume
    │   ├── MixedSeriesError                    several series or frames of reference mixed
    │   ├── OrientationError                    orientations differ between slices
    │   ├── SlicePositionError                  positions missing or duplicated
    │   ├── SliceSpacingError                   spacing between slices not uniform
    │   └── GridMismatchError                   an array does not fit the grid it must match
    ├── EncodingError (ValueError)              a writer refuses input (nothing was written)
    ├── DecodingError (ValueError)              an object's content cannot be decoded
    ├── NetworkError (ConnectionError)          a DICOM or DICOMweb peer did not do the work
    │   ├── AssociationError                    association refused, aborted or not established
    │   ├── PresentationContextError            the peer rejected a SOP class/transfer syntax
    │   ├── DimseStatusError                    the peer answered a failure status
    │   ├── DicomWebError                       a DICOMweb request failed
    │   ├── ProtocolError                       a peer broke the DICOM upper layer protocol
    │   ├── PeerTimeoutError (TimeoutError)     the peer did not answer in time
    │   └── SendError                           a transport did not deliver; permanent or not
    ├── StorageError (OSError)                  a received object could not be stored durably
    └── GatewayError (RuntimeError)             the gateway cannot carry out a job
        └── ModelError                          a model failed or returned unusable output

Examples
--------
>>> from radbridge.errors import MissingAttributeError
>>> err = MissingAttributeError(
...     "slice has no position",
...     path="ct/0001.dcm",
...     attribute="ImagePositionPatient",
...     hint="remove localizer images from the folder",
... )
>>> print(err)
ct/0001.dcm: slice has no position [ImagePositionPatient]. Remove localizer images from the folder.
>>> isinstance(err, ValueError)
True
"""

from __future__ import annotations

import os

__all__ = [
    "AssociationError",
    "ConfigError",
    "DecodingError",
    "DicomReadError",
    "DicomWebError",
    "DimseStatusError",
    "EncodingError",
    "GatewayError",
    "GeometryError",
    "GridMismatchError",
    "InvalidAttributeError",
    "MissingAttributeError",
    "MixedSeriesError",
    "ModelError",
    "NetworkError",
    "NotDicomError",
    "OptionalDependencyError",
    "OrientationError",
    "PeerTimeoutError",
    "PresentationContextError",
    "ProtocolError",
    "RadbridgeError",
    "SendError",
    "SlicePositionError",
    "SliceSpacingError",
    "StorageError",
    "UnknownTermError",
    "UnsupportedObjectError",
]


class RadbridgeError(Exception):
    """Base of every error radbridge raises on purpose.

    Parameters
    ----------
    message
        What went wrong, in one sentence without a trailing full stop.
    path
        The file, folder or peer concerned, if any.
    attribute
        The DICOM attribute keyword or the argument name concerned, if any.
    hint
        What the user can do about it.

    Attributes
    ----------
    message, path, attribute, hint
        The parts of the message, kept separately for programs.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        attribute: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.path = os.fspath(path) if path is not None else None
        self.attribute = attribute
        self.hint = hint
        super().__init__(self._compose())

    def _compose(self) -> str:
        text = self.message
        if self.path:
            text = f"{self.path}: {text}"
        if self.attribute:
            text = f"{text} [{self.attribute}]"
        if self.hint:
            hint = self.hint[0].upper() + self.hint[1:]
            text = f"{text}. {hint.rstrip('.')}."
        return text

    def __str__(self) -> str:
        return self._compose()

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only parts when errors cross process boundaries (workers, dask).
        return (
            _rebuild,
            (type(self), self.message, self.path, self.attribute, self.hint, self.__dict__),
        )


def _rebuild(
    cls: type[RadbridgeError],
    message: str,
    path: str | None,
    attribute: str | None,
    hint: str | None,
    state: dict[str, object],
) -> RadbridgeError:
    err = cls.__new__(cls)
    RadbridgeError.__init__(err, message, path=path, attribute=attribute, hint=hint)
    err.__dict__.update(state)
    return err


class OptionalDependencyError(RadbridgeError, ImportError):
    """An optional package is needed for this call; the message names the extra."""


class ConfigError(RadbridgeError, ValueError):
    """A configuration file or option is invalid."""


class DicomReadError(RadbridgeError, ValueError):
    """A file cannot be read as the object that was asked for."""


class NotDicomError(DicomReadError):
    """The file is not a DICOM file (no preamble and no parseable data set)."""


class MissingAttributeError(DicomReadError):
    """A required attribute is absent or empty."""


class InvalidAttributeError(DicomReadError):
    """An attribute holds a value that cannot be used."""


class UnknownTermError(InvalidAttributeError):
    """A name is not in :mod:`radbridge.codes`; ``suggestions`` holds the closest known names."""

    suggestions: tuple[str, ...] = ()


class UnsupportedObjectError(DicomReadError):
    """A valid DICOM object that radbridge does not handle for this purpose."""


class GeometryError(RadbridgeError, ValueError):
    """Instances or arrays do not form one consistent volume."""


class MixedSeriesError(GeometryError):
    """Instances from several series or frames of reference were mixed."""


class OrientationError(GeometryError):
    """Image orientations differ between slices, or are not orthonormal."""


class SlicePositionError(GeometryError):
    """Slice positions are missing, duplicated or off the stack axis."""


class SliceSpacingError(GeometryError):
    """The spacing between slices is not uniform within the tolerance."""


class GridMismatchError(GeometryError):
    """An array does not have the shape or geometry of the grid it must match."""


class EncodingError(RadbridgeError, ValueError):
    """A writer refused its input; nothing was written."""


class DecodingError(RadbridgeError, ValueError):
    """The content of an object cannot be decoded without losing its meaning."""


class NetworkError(RadbridgeError, ConnectionError):
    """A DICOM (DIMSE) or DICOMweb peer did not carry out the request."""


class AssociationError(NetworkError):
    """An association was rejected, aborted, or could not be established."""


class PresentationContextError(NetworkError):
    """The peer accepted no presentation context for a SOP class / transfer syntax."""


class DimseStatusError(NetworkError):
    """The peer answered a DIMSE failure status.

    Attributes
    ----------
    status : int | None
        The DIMSE status code (e.g. ``0xA700``), when known.
    """

    status: int | None = None


class DicomWebError(NetworkError):
    """A DICOMweb (STOW/QIDO/WADO-RS) request failed.

    Attributes
    ----------
    http_status : int | None
        The HTTP status code, when a response was received.
    failure_reasons : tuple of int
        The Failure Reason (0008,1197) of each instance a STOW-RS server refused.
    """

    http_status: int | None = None
    failure_reasons: tuple[int, ...] = ()


class ProtocolError(NetworkError):
    """A peer sent a malformed or unexpected PDU or DIMSE message (the association is aborted)."""


class PeerTimeoutError(NetworkError, TimeoutError):
    """The peer did not answer within the configured timeout."""


class SendError(NetworkError):
    """A transport could not deliver an instance (the one failure of every ``Sender``).

    Its message, peer and hint are those of the transport's own error, which is its
    ``__cause__`` (:class:`DimseStatusError`, :class:`DicomWebError`, ...).

    Attributes
    ----------
    permanent : bool
        True when sending the same file again cannot succeed (the peer refused
        it for what it is); False when a later try may (no answer, out of
        resources, a server error).
    """

    permanent: bool = False

    @classmethod
    def wrapping(cls, error: BaseException, *, permanent: bool) -> SendError:
        """Return a SendError carrying ``error``'s message, peer and hint.

        >>> cause = DimseStatusError("PACS answered 0xA900", path="pacs")
        >>> failure = SendError.wrapping(cause, permanent=True)
        >>> str(failure) == str(cause), failure.permanent
        (True, True)
        """
        if isinstance(error, RadbridgeError):
            parts = {"path": error.path, "attribute": error.attribute, "hint": error.hint}
            failure = cls(error.message, **parts)
        else:
            failure = cls(f"{type(error).__name__}: {error}")
        failure.permanent = permanent
        return failure


class StorageError(RadbridgeError, OSError):
    """A received object could not be stored durably (disk full, permissions, bad path)."""


class GatewayError(RadbridgeError, RuntimeError):
    """The gateway cannot carry out a job."""


class ModelError(GatewayError):
    """A model failed, or returned output that does not fit its input."""
