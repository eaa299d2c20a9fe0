"""Transfer syntaxes that radbridge reads and writes pixel data with.

:class:`TransferSyntax` names each syntax by a short value (``"rle"``) and
maps it to its UID. It accepts the short value, a few common aliases and the
UID itself, so options can come straight from a CLI flag or a file's meta
information.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache

from radbridge.errors import EncodingError

__all__ = ["TransferSyntax"]

_UIDS = {
    "explicit": "1.2.840.10008.1.2.1",
    "implicit": "1.2.840.10008.1.2",
    "big-endian": "1.2.840.10008.1.2.2",
    "deflated-explicit": "1.2.840.10008.1.2.1.99",
    "rle": "1.2.840.10008.1.2.5",
    "jpegls": "1.2.840.10008.1.2.4.80",
    "jpeg2000": "1.2.840.10008.1.2.4.90",
    "deflate": "1.2.840.10008.1.2.8.1",
}

_ALIASES = {
    "none": "explicit",
    "native": "explicit",
    "uncompressed": "explicit",
    "jpeg-ls": "jpegls",
    "jls": "jpegls",
    "jpeg-2000": "jpeg2000",
    "j2k": "jpeg2000",
    "rle-lossless": "rle",
    "explicit-big-endian": "big-endian",
}


class TransferSyntax(StrEnum):
    """A transfer syntax for pixel data, by short name.

    ``explicit``, ``implicit``, ``big-endian`` and ``deflated-explicit`` store
    frames uncompressed (*native*); ``rle`` (RLE Lossless), ``jpegls`` (JPEG-LS
    Lossless), ``jpeg2000`` (JPEG 2000 Lossless Only) and ``deflate`` (Deflated
    Image Frame Compression) compress each frame on its own (*encapsulated*).
    All of them are lossless. ``deflated-explicit`` deflates the whole data set
    when pydicom writes it, so its frames are native little endian.
    ``big-endian`` is retired: radbridge reads it but does not write it.

    The constructor also accepts the aliases ``none``, ``native``,
    ``jpeg-ls``, ``j2k`` and a UID.

    Examples
    --------
    >>> TransferSyntax("rle").uid
    '1.2.840.10008.1.2.5'
    >>> TransferSyntax("1.2.840.10008.1.2.4.80")
    <TransferSyntax.JPEGLS: 'jpegls'>
    >>> TransferSyntax("none").encapsulated
    False
    """

    EXPLICIT = "explicit"
    IMPLICIT = "implicit"
    BIG_ENDIAN = "big-endian"
    DEFLATED_EXPLICIT = "deflated-explicit"
    RLE = "rle"
    JPEGLS = "jpegls"
    JPEG2000 = "jpeg2000"
    DEFLATE = "deflate"

    @classmethod
    def _missing_(cls, value: object) -> TransferSyntax | None:
        if not isinstance(value, str):
            return None
        text = value.strip().rstrip("\x00").lower().replace("_", "-")
        text = _ALIASES.get(text, text)
        for member in cls:
            if text in (member.value, _UIDS[member.value]):
                return member
        return None

    @classmethod
    def parse(cls, value: TransferSyntax | str) -> TransferSyntax:
        """Return the member for ``value``, or raise :class:`~radbridge.errors.EncodingError`.

        Examples
        --------
        >>> TransferSyntax.parse("JPEG2000")
        <TransferSyntax.JPEG2000: 'jpeg2000'>
        """
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(m.value for m in cls if m.writable)
            raise EncodingError(
                f"unknown transfer syntax {value!r}",
                attribute="TransferSyntaxUID",
                hint=f"use one of {names}, or a supported UID",
            ) from None

    @property
    def uid(self) -> str:
        """The transfer syntax UID."""
        return _UIDS[self.value]

    @property
    def encapsulated(self) -> bool:
        """Whether frames are compressed one by one into fragments."""
        return self in _ENCAPSULATED

    @property
    def writable(self) -> bool:
        """Whether radbridge writes pixel data in this syntax.

        ``big-endian`` is retired, and ``deflate`` needs a pydicom that can save
        files in it (3.1 or later; pydicom 3.0 reads but refuses to write it).
        """
        if self is TransferSyntax.BIG_ENDIAN:
            return False
        return self is not TransferSyntax.DEFLATE or _pydicom_writes_deflate()

    @property
    def little_endian(self) -> bool:
        """Whether native pixel data is little endian."""
        return self is not TransferSyntax.BIG_ENDIAN


@cache
def _pydicom_writes_deflate() -> bool:
    # By pydicom's version, not by asking its UID dictionary: importing pynetdicom adds
    # this UID there, and what radbridge writes must not depend on import order.
    import pydicom

    major, minor = (int(part) for part in pydicom.__version__.split(".")[:2])
    return (major, minor) >= (3, 1)


_ENCAPSULATED = frozenset(
    {TransferSyntax.RLE, TransferSyntax.JPEGLS, TransferSyntax.JPEG2000, TransferSyntax.DEFLATE}
)
