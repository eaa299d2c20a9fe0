"""Key Object Selection documents (TID 2010): flag key images for the radiologist.

A KOS is an SR document (its own SOP class and template), so it lives in the SR
family and shares its document, content-item and reader modules.

Examples
--------
>>> from pydicom import examples
>>> from radbridge.iods.source import Series
>>> source = Series.from_datasets([examples.ct])
>>> ko = encode_key_objects([str(examples.ct.SOPInstanceUID)], source, description="check")
>>> kos = read_key_objects(ko)
>>> kos.description, kos.title.meaning
('check', 'Of Interest')
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from pydicom import Dataset
from pydicom.dataset import FileDataset

from radbridge.coding import Code
from radbridge.errors import EncodingError
from radbridge.geometry import SliceRef
from radbridge.iods.common import SeriesOptions, check_sop_class
from radbridge.iods.multiframe.fast_read import DicomFile
from radbridge.iods.source import (
    Series,
    SeriesLike,
    as_series,
    evidence_sequence,
    source_given_first,
)
from radbridge.iods.sr import concepts as c
from radbridge.iods.sr.content import container_item, image_item, text_item
from radbridge.iods.sr.reader import read_structured_report
from radbridge.iods.sr.writer import finish, sr_document

__all__ = [
    "KEY_OBJECT_SELECTION_STORAGE",
    "KeyObjectReference",
    "KeyObjects",
    "SeriesOptions",
    "encode_key_objects",
    "read_key_objects",
]

KEY_OBJECT_SELECTION_STORAGE = "1.2.840.10008.5.1.4.1.1.88.59"
_DEFAULT_OPTIONS = SeriesOptions(series_description="radbridge key images", series_number=302)


@dataclass(frozen=True)
class KeyObjectReference:
    """One referenced instance (and frames) of a KOS."""

    sop_class_uid: str
    sop_instance_uid: str
    frames: tuple[int, ...] = ()


@dataclass(frozen=True)
class KeyObjects:
    """A Key Object Selection document, read."""

    title: Code
    description: str
    references: tuple[KeyObjectReference, ...]


def encode_key_objects(
    keys: Sequence[str | SliceRef],
    source: SeriesLike,
    *,
    title: Code = c.OF_INTEREST,
    description: str = "",
    options: SeriesOptions | None = None,
) -> FileDataset:
    """Flag the instances ``keys`` (SOP Instance UIDs of ``source``) as key images.

    Parameters
    ----------
    keys
        SOP Instance UIDs, in the order a viewer should show them, or slices of the
        source (``source.slice_refs[i]``): a slice in a multi-frame instance flags
        its frame (Referenced Frame Number), a plain UID the whole instance.
    source
        The series the key images belong to (a :class:`~radbridge.iods.source.Series`,
        its data sets, or a volume). The former order ``(source, keys)`` still works,
        with a :class:`DeprecationWarning`.
    title
        Document title from CID 7010 (default DCM 113000 "Of Interest").
    description
        Key Object Description (free text, at most 1024 characters).
    options
        Series and UIDs; fix them for byte-identical re-runs.

    Raises
    ------
    EncodingError
        No keys, or a key that is not an instance of ``source``.
    """
    if source_given_first("encode_key_objects", keys):
        keys, source = cast(Sequence[str | SliceRef], source), cast(Series, keys)
    source = as_series(source)
    classes = {r.sop_instance_uid: r.sop_class_uid for r in source.slice_refs}
    if not keys:
        raise EncodingError(
            "no key images given",
            attribute="keys",
            hint="give at least one SOP Instance UID of the source series",
        )
    flagged = _key_frames(keys)
    unknown = [k for k in flagged if k not in classes]
    if unknown:
        raise EncodingError(
            f"{len(unknown)} key(s) are not instances of the source series, e.g. {unknown[0]}",
            attribute="ReferencedSOPInstanceUID",
            hint="use SOP Instance UIDs of the source series",
        )
    if len(description) > 1024:
        raise EncodingError("the description is longer than 1024 characters", attribute="TextValue")
    ds = sr_document(
        KEY_OBJECT_SELECTION_STORAGE, options or _DEFAULT_OPTIONS, source, modality="KO"
    )
    unique = list(flagged)
    children: list[Dataset] = []
    if description:
        children.append(text_item("CONTAINS", c.KEY_OBJECT_DESCRIPTION, description))
    children += [
        image_item("CONTAINS", None, classes[k], k, frames=flagged[k] or ()) for k in unique
    ]
    root = container_item(None, title, children, template="2010")
    for element in root:
        ds[element.tag] = element
    series = str(source.series_instance_uid or "")
    ds.CurrentRequestedProcedureEvidenceSequence = evidence_sequence(
        source.study_instance_uid, [(series, classes[k], k) for k in unique]
    )
    return finish(ds)


def _key_frames(keys: Sequence[str | SliceRef]) -> dict[str, list[int] | None]:
    """Return each flagged instance (in order) and its frames (``None``: the whole instance)."""
    flagged: dict[str, list[int] | None] = {}
    for key in keys:
        uid, frame = (
            (key, None) if isinstance(key, str) else (key.sop_instance_uid, key.frame_number)
        )
        frames = flagged.setdefault(uid, [])
        if frame is None or frames is None:
            flagged[uid] = None
        elif frame not in frames:
            frames.append(frame)
    return flagged


def read_key_objects(file: DicomFile) -> KeyObjects:
    """Read a Key Object Selection document into its title, description and references.

    Raises
    ------
    UnsupportedObjectError
        The file is not a Key Object Selection document.
    """
    sr = read_structured_report(file)
    check_sop_class(
        sr.dataset,
        (KEY_OBJECT_SELECTION_STORAGE,),
        what="a Key Object Selection document",
        source=str(getattr(sr.dataset, "filename", "") or "") or None,
        hint=f"give a KO file (SOP class {KEY_OBJECT_SELECTION_STORAGE})",
    )
    description = next((str(n.value) for n in sr.tree.find(c.KEY_OBJECT_DESCRIPTION)), "")
    references = tuple(
        KeyObjectReference(cls, uid, tuple(frames))
        for node in sr.tree.children
        if node.value_type in ("IMAGE", "COMPOSITE", "WAVEFORM")
        for cls, uid, frames, _ in node.value
    )
    return KeyObjects(sr.tree.concept or c.OF_INTEREST, description, references)
