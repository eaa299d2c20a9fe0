"""The functional groups of a Legacy Converted Enhanced image, from the classic images.

Each group is shared when every image has the same value and per-frame otherwise.

Examples
--------
>>> from pydicom import Dataset
>>> a, b = Dataset(), Dataset()
>>> a.RescaleSlope = b.RescaleSlope = "1"
>>> a.RescaleIntercept, b.RescaleIntercept = "-1024", "-1000"
>>> shared, per_frame = Dataset(), [Dataset(), Dataset()]
>>> place(shared, per_frame, [transformation(ds, "HU") for ds in (a, b)])
>>> [f.PixelValueTransformationSequence[0].RescaleIntercept for f in per_frame]
['-1024', '-1000']
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from radbridge.codes.regions import body_part_region

__all__ = [
    "anatomy",
    "measures",
    "orientation",
    "place",
    "transformation",
    "window",
]

#: One functional group: the sequence keyword and its single item (``None``: absent).
Group = tuple[str, Dataset | None]


def _item(keyword: str, source: Dataset, names: Sequence[str]) -> Group:
    item = Dataset()
    for name in names:
        value = source.get(name)
        if value not in (None, ""):
            setattr(item, name, value)
    return keyword, item if len(item) else None


def measures(ds: Dataset) -> Group:
    """Pixel Measures: pixel spacing and slice thickness."""
    return _item("PixelMeasuresSequence", ds, ("PixelSpacing", "SliceThickness"))


def orientation(ds: Dataset) -> Group:
    """Plane Orientation (Patient)."""
    return _item("PlaneOrientationSequence", ds, ("ImageOrientationPatient",))


def transformation(ds: Dataset, default_type: str, *, required: str | None = None) -> Group:
    """Pixel Value Transformation: the rescale (identity when the image has none).

    ``required``: the Rescale Type the IOD prescribes for this frame (``HU`` for an
    original CT frame, PS3.3 C.8.15.3.10), written whatever the image says.
    """
    item = Dataset()
    item.RescaleIntercept = ds.get("RescaleIntercept", "0")
    item.RescaleSlope = ds.get("RescaleSlope", "1")
    item.RescaleType = required or ds.get("RescaleType") or default_type
    return "PixelValueTransformationSequence", item


def window(ds: Dataset) -> Group:
    """Frame VOI LUT: the image's window (absent when it has none)."""
    keyword, item = _item(
        "FrameVOILUTSequence",
        ds,
        ("WindowCenter", "WindowWidth", "WindowCenterWidthExplanation", "VOILUTFunction"),
    )
    if item is None or "WindowCenter" not in item or "WindowWidth" not in item:
        return keyword, None
    return keyword, item


def anatomy(ds: Dataset) -> Group:
    """Frame Anatomy from Anatomic Region Sequence or a known Body Part Examined."""
    item = Dataset()
    if ds.get("AnatomicRegionSequence"):
        item.AnatomicRegionSequence = ds.AnatomicRegionSequence
    else:
        region = body_part_region(str(ds.get("BodyPartExamined", "") or ""))
        if region is None:
            return "FrameAnatomySequence", None
        item.AnatomicRegionSequence = [region.to_dataset()]
    laterality = str(ds.get("Laterality", "") or ds.get("ImageLaterality", "") or "")
    item.FrameLaterality = laterality if laterality in ("L", "R", "B") else "U"
    return "FrameAnatomySequence", item


def _same(items: Sequence[Dataset | None]) -> bool:
    first = items[0]
    return all(item == first for item in items[1:])


def place(shared: Dataset, per_frame: Sequence[Dataset], groups: Sequence[Group]) -> None:
    """Put one functional group (one per frame) in ``shared`` or in each frame's item.

    Frames without the group get none; when every frame has the same item it is
    shared.
    """
    keyword = groups[0][0]
    items = [item for _, item in groups]
    if all(item is None for item in items):
        return
    if _same(items):
        setattr(shared, keyword, [items[0]])
        return
    for frame, item in zip(per_frame, items, strict=True):
        if item is not None:
            setattr(frame, keyword, [item])
