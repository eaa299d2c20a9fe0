"""The classic images' references to other images, kept with their evidence.

A classic image may name other images: the localizers its slices were planned on
(Referenced Image Sequence) or the images it was derived from (Source Image
Sequence). The converted frame keeps them in its Referenced Image and Derivation
Image functional groups, and the enhanced image must then list every referenced
instance with its study and series in Referenced Image Evidence Sequence and
Source Image Evidence Sequence (PS3.3 C.8.13.2.1.1, C.8.15.2, C.8.22.1).

A classic reference names the instance only, so its study and series come from the
images being converted and from the other instances the caller gives. A reference
whose series is not known cannot be listed in the evidence; it is left out of the
converted frame (the classic image keeps it, and the frame's Image Frame Conversion
Source leads back to that image), with one warning saying how many were left out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from pydicom.dataset import Dataset

from radbridge.iods.source import evidence_by_study

__all__ = ["Locations", "add_references", "locations"]

log = logging.getLogger(__name__)

#: SOP Instance UID -> (Study Instance UID, Series Instance UID)
Locations = dict[str, tuple[str, str]]

#: classic attribute -> (functional group, evidence attribute) it leads to
_KINDS = {
    "ReferencedImageSequence": "ReferencedImageEvidenceSequence",
    "SourceImageSequence": "SourceImageEvidenceSequence",
}


def locations(*groups: Iterable[Dataset]) -> Locations:
    """Return where each instance of ``groups`` is: its study and series UIDs.

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "1.1.1.1", "1.1", "1.1.1"
    >>> locations([ds])
    {'1.1.1.1': ('1.1', '1.1.1')}
    """
    found: Locations = {}
    for datasets in groups:
        for ds in datasets:
            sop, study, series = (
                str(ds.get(k, "") or "")
                for k in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")
            )
            if sop and study and series:
                found[sop] = (study, series)
    return found


def add_references(
    ds: Dataset, frames: Sequence[Dataset], images: Sequence[Dataset], known: Locations
) -> None:
    """Copy each image's known references into its frame and list them as evidence.

    ``frames`` are the Per-Frame Functional Groups items of ``images``, in the same
    order. References outside ``known`` are left out, with one warning.
    """
    evidence: dict[str, list[tuple[str, str, str, str]]] = {kind: [] for kind in _KINDS}
    unknown: dict[str, set[str]] = {kind: set() for kind in _KINDS}
    for frame, image in zip(frames, images, strict=True):
        kept = {}
        for kind in _KINDS:
            items = [item for item in image.get(kind) or [] if _has_uids(item)]
            kept[kind] = [item for item in items if str(item.ReferencedSOPInstanceUID) in known]
            unknown[kind].update(
                str(item.ReferencedSOPInstanceUID) for item in items if item not in kept[kind]
            )
            evidence[kind] += [_located(item, known) for item in kept[kind]]
        if kept["ReferencedImageSequence"]:
            frame.ReferencedImageSequence = kept["ReferencedImageSequence"]
        if kept["SourceImageSequence"]:
            frame.DerivationImageSequence = [_derivation(image, kept["SourceImageSequence"])]
    for kind, attribute in _KINDS.items():
        if evidence[kind]:
            setattr(ds, attribute, evidence_by_study(evidence[kind]))
    _warn(unknown)


def _has_uids(item: Dataset) -> bool:
    return bool(item.get("ReferencedSOPInstanceUID")) and bool(item.get("ReferencedSOPClassUID"))


def _located(item: Dataset, known: Locations) -> tuple[str, str, str, str]:
    sop = str(item.ReferencedSOPInstanceUID)
    study, series = known[sop]
    return study, series, str(item.ReferencedSOPClassUID), sop


def _derivation(image: Dataset, sources: list[Dataset]) -> Dataset:
    derivation = Dataset()
    derivation.SourceImageSequence = sources
    for keyword in ("DerivationDescription", "DerivationCodeSequence"):
        if image.get(keyword):
            setattr(derivation, keyword, image.get(keyword))
    return derivation


def _warn(unknown: dict[str, set[str]]) -> None:
    for kind, uids in unknown.items():
        if uids:
            log.warning(
                "%d instance(s) named in the images' %s are not among the given images, so "
                "their series is unknown: the converted frames leave these references out "
                "(the classic images keep them). To keep them, give those instances too "
                "(encode_legacy_enhanced(referenced=...), or the same --source folder)",
                len(uids),
                kind,
            )
