"""Build small synthetic image data sets with exact geometry for tests."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pydicom.valuerep import DSfloat


def ct_slice(
    position: Sequence[float],
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    *,
    spacing: Sequence[float] = (0.5, 0.5),
    rows: int = 4,
    columns: int = 5,
    value: int = 0,
    series_uid: str = "1.2.3.4",
    frame_uid: str | None = "1.2.3.5",
    slope: float = 1.0,
    intercept: float = -1024.0,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.3.1"
    ds.SeriesInstanceUID = series_uid
    if frame_uid:
        ds.FrameOfReferenceUID = frame_uid
    ds.Modality = "CT"
    ds.PatientID = "P1"
    ds.ImagePositionPatient = [DSfloat(float(v), auto_format=True) for v in position]
    ds.ImageOrientationPatient = [DSfloat(float(v), auto_format=True) for v in orientation]
    ds.PixelSpacing = [DSfloat(float(v), auto_format=True) for v in spacing]
    ds.SliceThickness = "1"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleIntercept = f"{intercept:g}"
    pixels = np.full((rows, columns), value, np.uint16)
    pixels[0, 0] = value  # keep the value visible to readers
    ds.PixelData = pixels.tobytes()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def deflated_cut(data: bytes, cut: int) -> bytes:
    """A Deflated Explicit VR Little Endian file whose data set lost ``cut`` bytes before deflating.

    The deflate stream itself is whole (zlib reads it), so only the declared lengths
    inside the inflated data set tell that it ends early. The file meta group ends
    where its group length (0002,0000), a UL at bytes 140-143, says.
    """
    start = 144 + int.from_bytes(data[140:144], "little")
    body = zlib.decompress(data[start:], -zlib.MAX_WBITS)
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return data[:start] + packer.compress(body[:-cut]) + packer.flush()


def rotation(quaternion: Sequence[float]) -> np.ndarray:
    q = np.asarray(quaternion, dtype=np.float64)
    w, x, y, z = q / np.linalg.norm(q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def match_axes(
    our_affine: np.ndarray, their_array: np.ndarray, their_affine: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flip another reader's axes so its affine points the way ours does.

    Readers agree on geometry when every voxel lands on the same LPS point; they
    may still order slices (or rows) the other way round.
    """
    array, affine = their_array, their_affine.copy()
    for axis in range(3):
        if float(np.dot(affine[:3, axis], our_affine[:3, axis])) < 0:
            array = np.flip(array, axis=axis)
            affine[:3, 3] = affine[:3, 3] + (array.shape[axis] - 1) * affine[:3, axis]
            affine[:3, axis] = -affine[:3, axis]
    return array, affine
