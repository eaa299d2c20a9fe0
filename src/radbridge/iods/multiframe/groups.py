"""The functional groups a derived multi-frame object writes, encoded in bulk.

A SEG and a Parametric Map share their frame geometry: the shared Plane
Orientation and Pixel Measures, a Derivation Image item per frame that names the
source image at the same position, and per frame a Frame Content item (dimension
index values) and a Plane Position item. Per-frame items are encoded as bytes once
per slice (and segment), not built as thousands of pydicom Datasets (see
:mod:`~radbridge.iods.multiframe.functional_groups`).

Examples
--------
>>> import numpy as np
>>> from radbridge.geometry import Volume
>>> from radbridge.iods.source import Series
>>> grid = Volume(np.zeros((3, 2, 2)), np.diag([2.0, 1.0, 1.0, 1.0]), "1.2.3")
>>> source = Series.from_volume(grid)
>>> [str(v) for v in shared_groups(source.geometry).PixelMeasuresSequence[0].PixelSpacing]
['1', '1']
>>> refs = derivation_items(source, source.geometry, True, dcm("113076", "Segmentation"))
>>> refs  # a Volume names no source images
[None, None, None]
>>> from radbridge.iods.multiframe.functional_groups import parse_items
>>> items = per_frame_items(np.arange(3), source.slice_positions(), refs,
...                         position_indices=np.arange(1, 4))
>>> len(parse_items(items, little_endian=True, implicit_vr=False))
3
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.coding import Code, dcm
from radbridge.geometry import VolumeGeometry
from radbridge.geometry.volume import FloatArray
from radbridge.iods.multiframe.functional_groups import ItemEncoder, encode_dataset, format_ds
from radbridge.iods.source import Series

__all__ = [
    "SOURCE_IMAGE_PURPOSE",
    "derivation_items",
    "match_planes",
    "per_frame_items",
    "shared_groups",
]

#: Purpose of Reference of every source image (CID 7202/7222).
SOURCE_IMAGE_PURPOSE = dcm("121322", "Source image for image processing operation")

_ENC = ItemEncoder()


def shared_groups(geometry: VolumeGeometry, uneven: FloatArray | None = None) -> Dataset:
    """Return the Shared Functional Groups item: plane orientation and pixel measures.

    Slice Thickness and Spacing Between Slices are the grid's step. ``uneven``: the
    frames' positions when they lie on a source's unevenly spaced slices (a missing
    slice). Spacing Between Slices is then left out, as no one value is the
    distance between adjacent frames, and Slice Thickness is the smallest step:
    dcmqi (3D Slicer) builds its grid from Spacing Between Slices, else from Slice
    Thickness, and places each frame on it by its position, so the mean step put
    frames where they are not and the acquired thickness can fall between them.
    """
    shared = Dataset()
    orientation = Dataset()
    orientation.ImageOrientationPatient = [format_ds(v) for v in geometry.image_orientation]
    shared.PlaneOrientationSequence = [orientation]
    measures = Dataset()
    measures.PixelSpacing = [format_ds(v) for v in geometry.pixel_spacing]
    if uneven is None or len(uneven) < 2:
        measures.SliceThickness = format_ds(geometry.spacing[0])
        measures.SpacingBetweenSlices = format_ds(geometry.spacing[0])
    else:
        steps = np.abs(np.diff(np.asarray(uneven) @ geometry.slice_normal))
        measures.SliceThickness = format_ds(float(steps.min()))
    shared.PixelMeasuresSequence = [measures]
    return shared


def match_planes(source: Series, geometry: VolumeGeometry) -> list[int | None]:
    """Return, for each slice of ``geometry``, the source slice at its position (or ``None``).

    Planes match only when the grids share rows, columns, orientation and pixel
    spacing, and a position lies within 1 µm of a source slice.
    """
    src = source.geometry
    if (
        src.shape[1:] != geometry.shape[1:]
        or not np.allclose(src.image_orientation, geometry.image_orientation, atol=1e-4)
        or not np.allclose(src.pixel_spacing, geometry.pixel_spacing, atol=1e-4)
    ):
        return [None] * geometry.shape[0]
    src_positions = source.slice_positions()
    out: list[int | None] = []
    for position in geometry.slice_positions:
        distance = np.linalg.norm(src_positions - position, axis=1)
        best = int(np.argmin(distance))
        out.append(best if distance[best] < 1e-3 else None)
    return out


def _code_item(code: Code) -> bytes:
    return _ENC.item(encode_dataset(code.to_dataset()))


def derivation_items(
    source: Series, geometry: VolumeGeometry, same_grid: bool, derivation: Code
) -> list[bytes | None]:
    """Encode a Derivation Image Sequence per slice of ``geometry``.

    Each names the source image (and frame) at the slice's position with the
    Derivation Code ``derivation``; ``None`` where no source plane matches (or the
    source names no images). A frame is only ever referenced from its own plane on
    the same pixel grid, so every Source Image item says Spatial Locations
    Preserved (0028,135A) ``YES``: readers such as highdicom then index frames by
    source image without being told to ignore spatial locations.
    """
    if not source.slice_refs:
        return [None] * geometry.shape[0]
    matches: list[int | None] = (
        list(range(geometry.shape[0])) if same_grid else match_planes(source, geometry)
    )
    purpose = _ENC.sequence(0x0040A170, [_code_item(SOURCE_IMAGE_PURPOSE)])
    code = _ENC.sequence(0x00089215, [_code_item(derivation)])
    preserved = _ENC.element(0x0028135A, "CS", _ENC.text("YES"))
    out: list[bytes | None] = []
    for match in matches:
        if match is None:
            out.append(None)
            continue
        ref = source.slice_refs[match]
        content = _ENC.element(0x00081150, "UI", _ENC.uid(ref.sop_class_uid))
        content += _ENC.element(0x00081155, "UI", _ENC.uid(ref.sop_instance_uid))
        if ref.frame_number is not None:
            content += _ENC.element(0x00081160, "IS", _ENC.text(str(ref.frame_number)))
        image = _ENC.sequence(0x00082112, [_ENC.item(content + preserved + purpose)])
        out.append(_ENC.sequence(0x00089124, [_ENC.item(image + code)]))
    return out


def per_frame_items(
    slices: NDArray[np.int64],
    positions: NDArray[np.float64],
    refs: Sequence[bytes | None],
    *,
    position_indices: NDArray[np.int64],
    segments: NDArray[np.int64] | None = None,
) -> bytes:
    """Encode the Per-Frame Functional Groups items, one per frame.

    Parameters
    ----------
    slices
        The slice each frame lies on (indexes ``positions`` and ``refs``).
    positions
        Image Position Patient of each slice.
    refs
        Each slice's Derivation Image Sequence bytes (:func:`derivation_items`).
    position_indices
        Each frame's dimension index value for its position (1-based).
    segments
        Each frame's Referenced Segment Number (SEG BINARY/FRACTIONAL), which then
        leads the dimension index values; ``None`` for one frame per position.
    """
    position_bytes: dict[int, bytes] = {}
    segment_bytes: dict[int, bytes] = {}
    chunks = []
    for frame in range(len(slices)):
        k = int(slices[frame])
        plane = position_bytes.get(k)
        if plane is None:
            plane = _ENC.sequence(
                0x00209113, [_ENC.item(_ENC.element(0x00200032, "DS", _ENC.ds(positions[k])))]
            )
            position_bytes[k] = plane
        index = int(position_indices[frame])
        segment = None if segments is None else int(segments[frame])
        values = _ENC.ul(index) if segment is None else _ENC.ul(segment, index)
        content = refs[k] or b""
        content += _ENC.sequence(0x00209111, [_ENC.item(_ENC.element(0x00209157, "UL", values))])
        content += plane
        if segment is not None:
            ident = segment_bytes.get(segment)
            if ident is None:
                ident = _ENC.sequence(
                    0x0062000A, [_ENC.item(_ENC.element(0x0062000B, "US", _ENC.us(segment)))]
                )
                segment_bytes[segment] = ident
            content += ident
        chunks.append(_ENC.item(content))
    return b"".join(chunks)
