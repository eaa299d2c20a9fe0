"""Output profiles: which encoding each writer picks for a target reader.

Every default opens in every reader radbridge is tested against (dcmqi/3D Slicer,
highdicom, dcmjs/OHIF, Orthanc, dciodvfy, PixelMed): that is the ``interop``
profile. The other profiles pick a documented set for one kind of reader — the
smallest encoding it reads, measured by ``tests/test_compatibility.py`` — and
refuse what that reader cannot open at all instead of writing it silently (so
``slicer`` refuses integer Parametric Maps: dcmqi reads float32 maps only, and
``pacs`` Label Map SEGs: a PACS on DCMTK before 3.6.9, Orthanc 1.10.1 among them,
refuses that SOP class in association negotiation).
docs/compatibility.md has the table.

========== ============ ============== ============== ============= ==========
profile    SEG BINARY   SEG FRACTIONAL SEG LABELMAP   PM (integer)  SC
========== ============ ============== ============== ============= ==========
interop    explicit     explicit       rle            explicit      explicit
slicer     deflated     deflated       deflated       (refused)     explicit
ohif       explicit     (refused)      rle            explicit      explicit
pacs       explicit     explicit       (refused)      explicit      explicit
compact    deflated     jpegls         jpegls         jpegls        jpegls
========== ============ ============== ============== ============= ==========

``deflated`` is Deflated Explicit VR Little Endian (the whole data set deflated);
float Parametric Maps are always uncompressed (DICOM has no compressed float
pixel data). An explicit ``transfer_syntax`` given to a writer wins over the
profile.

Examples
--------
>>> Profile("slicer").transfer_syntax("seg-labelmap").value
'deflated-explicit'
>>> Profile.INTEROP.transfer_syntax("seg-labelmap").value
'rle'
>>> Profile.parse(None) is Profile.INTEROP
True
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from types import MappingProxyType

from radbridge.errors import EncodingError
from radbridge.iods.common import choice
from radbridge.pixels import TransferSyntax

__all__ = ["OUTPUT_KINDS", "Profile", "writable_syntax"]

#: The outputs a profile chooses an encoding for.
OUTPUT_KINDS = ("seg-binary", "seg-fractional", "seg-labelmap", "pm-integer", "sc")

_E, _D = TransferSyntax.EXPLICIT, TransferSyntax.DEFLATED_EXPLICIT
_R, _J = TransferSyntax.RLE, TransferSyntax.JPEGLS

_CHOICES = MappingProxyType(
    {
        "interop": (_E, _E, _R, _E, _E),
        "slicer": (_D, _D, _D, None, _E),
        "ohif": (_E, None, _R, _E, _E),
        "pacs": (_E, _E, None, _E, _E),
        "compact": (_D, _J, _J, _J, _J),
    }
)

#: Why a profile refuses an output (its reader cannot open that object at all).
_REFUSALS = MappingProxyType(
    {
        ("slicer", "pm-integer"): (
            "dcmqi (what 3D Slicer uses) reads float32 Parametric Maps only",
            "store the map as float32 (stored_dtype='float32', CLI --dtype float32; the "
            "default for float input), or use another profile",
        ),
        ("ohif", "seg-fractional"): (
            "OHIF 3.13's SEG reader (Cornerstone3D adapters 5.6.8) refuses FRACTIONAL SEGs "
            "with values other than 0 and the maximum ('Fractional segmentations are not "
            "yet supported')",
            "threshold the probabilities and write a BINARY or LABELMAP SEG, or use another "
            "profile",
        ),
        ("pacs", "seg-labelmap"): (
            "Label Map Segmentation Storage (1.2.840.10008.5.1.4.1.1.66.7, 2024) is a SOP "
            "class a PACS on DCMTK before 3.6.9 (Orthanc 1.10.1 among them) refuses in "
            "association negotiation",
            "write segmentation_type='binary' (Segmentation Storage; CLI --type binary), or "
            "use another profile once the PACS accepts the class",
        ),
    }
)


class Profile(enum.StrEnum):
    """A documented set of encodings for one kind of reader (see the module table)."""

    INTEROP = "interop"
    SLICER = "slicer"
    OHIF = "ohif"
    PACS = "pacs"
    COMPACT = "compact"

    @classmethod
    def parse(cls, value: Profile | str | None) -> Profile:
        """Return the profile named by ``value`` (``None``: the default, ``interop``).

        Raises
        ------
        EncodingError
            ``value`` names no profile.
        """
        if value is None:
            return cls.INTEROP
        return choice(cls, value, "profile", what="profile")

    def transfer_syntax(self, kind: str) -> TransferSyntax:
        """Return the transfer syntax this profile writes ``kind`` in (one of OUTPUT_KINDS).

        Raises
        ------
        EncodingError
            The profile's reader cannot open this kind of object (the message says
            why and what to do instead).
        """
        if kind not in OUTPUT_KINDS:
            raise ValueError(f"unknown output kind {kind!r}; use one of {OUTPUT_KINDS}")
        chosen = _CHOICES[self.value][OUTPUT_KINDS.index(kind)]
        if chosen is None:
            why, hint = _REFUSALS[(self.value, kind)]
            raise EncodingError(f"profile {self.value!r}: {why}", attribute="profile", hint=hint)
        return chosen


def writable_syntax(
    value: str, allowed: Sequence[TransferSyntax], *, refusal: str, why: str = "", note: str = ""
) -> TransferSyntax:
    """Return the transfer syntax ``value`` names, if an object can be written in it.

    Raises
    ------
    EncodingError
        "<refusal> <syntax><why>", the hint lists ``allowed`` (then ``note``).

    Examples
    --------
    >>> writable_syntax("rle", [TransferSyntax.EXPLICIT, TransferSyntax.RLE], refusal="x")
    <TransferSyntax.RLE: 'rle'>
    """
    syntax = TransferSyntax.parse(value)
    if syntax not in allowed:
        raise EncodingError(
            f"{refusal} {syntax.value}{why}",
            attribute="TransferSyntaxUID",
            hint="use " + ", ".join(s.value for s in allowed) + note,
        )
    return syntax
