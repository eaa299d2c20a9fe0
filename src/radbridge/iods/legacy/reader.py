"""Read a Legacy Converted Enhanced image: its series, and the classic image of each frame.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from radbridge.io.phantom import write_phantom
>>> from radbridge.io.series import read_series_datasets
>>> from radbridge.iods.legacy.writer import encode_legacy_enhanced
>>> folder = Path(tempfile.mkdtemp())
>>> classic = read_series_datasets(write_phantom(folder, slices=3, size=16, nifti=False).dicom_dir)
>>> encode_legacy_enhanced(classic).save_as(folder / "lce.dcm", enforce_file_format=True)
>>> image = read_legacy_enhanced(folder / "lce.dcm")
>>> image.series.volume().shape, len(image.classic_images)
((3, 16, 16), 3)
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from radbridge.errors import InvalidAttributeError
from radbridge.geometry import SliceRef
from radbridge.iods.common import ReadObject
from radbridge.iods.legacy.types import (
    LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
    LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
    LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
)
from radbridge.iods.multiframe.fast_read import DicomFile, open_large
from radbridge.iods.source import Series

__all__ = ["LegacyEnhancedImage", "read_legacy_enhanced"]

_CLASSES = (
    LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
    LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
    LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
)


class LegacyEnhancedImage(ReadObject):
    """A Legacy Converted Enhanced CT/MR/PET image (``dataset``, ``source``: :class:`ReadObject`).

    Attributes
    ----------
    series
        The image as a series (frames ordered along the slice normal; pixels decoded
        by :meth:`~radbridge.iods.source.Series.volume`).
    classic_images
        For each slice of :attr:`series`, the classic image it was converted from
        (Image Frame Conversion Source), or ``None`` where the frame names none.

    Raises
    ------
    radbridge.errors.UnsupportedObjectError
        The data set holds another kind of object.
    radbridge.errors.InvalidAttributeError
        A frame's conversion source is malformed.
    radbridge.errors.GeometryError
        The frames do not form one volume.
    """

    SOP_CLASSES = _CLASSES
    WHAT = "a Legacy Converted Enhanced image"
    HINT = "read other images with radbridge.io.series.read_series"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        name = source or f"<dataset {ds.get('SOPInstanceUID', '?')}>"
        super().__init__(ds, source=name)
        self.series = Series.from_datasets([ds], sources=[name], allow_nonuniform_spacing=True)
        assert self.series.plan is not None
        per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
        self.classic_images: tuple[SliceRef | None, ...] = tuple(
            _source(per_frame, frame, name) for _, frame in self.series.plan.slice_locations
        )

    def frame_of(self, sop_instance_uid: str) -> int:
        """Return the slice index (in :attr:`series` order) of a classic image.

        Raises
        ------
        KeyError
            No frame was converted from that image.
        """
        for index, ref in enumerate(self.classic_images):
            if ref is not None and ref.sop_instance_uid == sop_instance_uid:
                return index
        raise KeyError(sop_instance_uid)


def read_legacy_enhanced(file: DicomFile) -> LegacyEnhancedImage:
    """Read a Legacy Converted Enhanced CT, MR or PET image.

    Parameters
    ----------
    file
        A path, the file's bytes, or a data set.

    Raises
    ------
    radbridge.errors.UnsupportedObjectError
        The file holds another kind of object.
    radbridge.errors.InvalidAttributeError
        A frame's conversion source is malformed.
    radbridge.errors.GeometryError
        The frames do not form one volume.
    """
    ds, opened = open_large(file)  # the pixel data is not copied out of the file
    return LegacyEnhancedImage(ds, source=opened)


def _source(per_frame: Sequence[Dataset], frame: int | None, name: str) -> SliceRef | None:
    if frame is None or frame >= len(per_frame):
        return None
    items = per_frame[frame].get("ConversionSourceAttributesSequence") or []
    if not items:
        return None
    item = items[0]
    sop_class, sop_instance = (
        item.get("ReferencedSOPClassUID"),
        item.get("ReferencedSOPInstanceUID"),
    )
    if not sop_class or not sop_instance:
        raise InvalidAttributeError(
            f"frame {frame + 1} names its classic image without a SOP class or instance UID",
            path=name,
            attribute="ConversionSourceAttributesSequence",
            hint="the file is damaged; its pixels and geometry are still readable with "
            "radbridge.io.series.read_series",
        )
    return SliceRef(str(sop_class), str(sop_instance), None)
