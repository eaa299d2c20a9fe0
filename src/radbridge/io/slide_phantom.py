"""A synthetic whole-slide image: a small pyramid of VL Whole Slide Microscopy images.

:func:`write_slide_phantom` writes one ``TILED_FULL`` RGB brightfield image per level
(level k half the size of level k-1), tiles RLE Lossless, so examples, tests and
benchmarks have a slide without downloading one. The tissue is a few pink discs on
white glass, placed by ``seed``; the same arguments give byte-identical files (UIDs
derived from ``seed``). Tiles with the same pixels are compressed once, so a
``blank=True`` slide of 50,000 × 50,000 pixels takes a few seconds and ~100 MB.

Examples
--------
>>> import tempfile
>>> from radbridge.wsi import read_slide
>>> folder = tempfile.mkdtemp()
>>> files = write_slide_phantom(folder, size=(300, 500), tile=128, levels=2)
>>> [level.shape for level in read_slide(folder).levels]
[(300, 500), (150, 250)]
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, RLELossless

from radbridge.color import srgb_icc_profile
from radbridge.errors import ConfigError
from radbridge.pixels import encode_frames
from radbridge.uids import derived_uid
from radbridge.wsi import VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE

__all__ = ["write_slide_phantom"]

#: Where pixel (1, 1) of every level lies on the slide (mm), and the finest spacing.
ORIGIN = (20.0, 40.0)
SPACING = 0.00025
_WHITE = np.array([255, 255, 255], np.uint8)
_PINK = np.array([214, 120, 180], np.uint8)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _context(seed: int) -> Dataset:
    uid = derived_uid("slide-phantom", str(seed), "study")
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (
        "Slide^Phantom",
        "WSI",
        "",
        "O",
    )
    ds.StudyInstanceUID = uid
    ds.StudyDate, ds.StudyTime, ds.StudyID, ds.AccessionNumber = "20260101", "120000", "1", ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "SM"
    ds.SeriesInstanceUID = derived_uid("slide-phantom", str(seed), "series")
    ds.SeriesNumber = 1
    ds.FrameOfReferenceUID = derived_uid("slide-phantom", str(seed), "frame-of-reference")
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.Manufacturer, ds.ManufacturerModelName = "radbridge", "slide phantom"
    ds.DeviceSerialNumber, ds.SoftwareVersions = "0", "1"
    ds.ContentDate, ds.ContentTime = "20260101", "120000"
    ds.AcquisitionDateTime = "20260101120000"
    ds.VolumetricProperties, ds.SpecimenLabelInImage = "VOLUME", "NO"
    ds.BurnedInAnnotation, ds.FocusMethod, ds.ExtendedDepthOfField = "NO", "AUTO", "NO"
    ds.AcquisitionContextSequence = []
    ds.ContainerIdentifier = f"PHANTOM-{seed}"
    ds.IssuerOfTheContainerIdentifierSequence = []
    ds.ContainerTypeCodeSequence = [_code("433466003", "SCT", "Microscope slide")]
    specimen = Dataset()
    specimen.SpecimenIdentifier = f"PHANTOM-{seed}-1"
    specimen.SpecimenUID = derived_uid("slide-phantom", str(seed), "specimen")
    specimen.IssuerOfTheSpecimenIdentifierSequence = []
    specimen.SpecimenPreparationSequence = []
    ds.SpecimenDescriptionSequence = [specimen]
    path = Dataset()
    path.OpticalPathIdentifier = "1"
    path.OpticalPathDescription = "Brightfield"
    path.IlluminationTypeCodeSequence = [_code("111744", "DCM", "Brightfield illumination")]
    path.IlluminationColorCodeSequence = [_code("414298005", "SCT", "Full Spectrum")]
    path.ICCProfile = srgb_icc_profile()
    ds.OpticalPathSequence = [path]
    ds.NumberOfOpticalPaths = 1
    return ds


def _tile(
    row: int, column: int, tile: int, scale: int, discs: NDArray[np.float64]
) -> NDArray[np.uint8] | None:
    """One RGB tile: pink inside any disc (finest-level pixel units); None when all white."""
    span = tile * scale
    near = [
        (cy, cx, r)
        for cy, cx, r in discs
        if abs(cy - (row + 0.5) * span) < r + span and abs(cx - (column + 0.5) * span) < r + span
    ]
    if not near:
        return None
    y, x = np.mgrid[0:tile, 0:tile]
    y, x = (y + row * tile) * scale, (x + column * tile) * scale
    inside = np.zeros((tile, tile), bool)
    for cy, cx, r in near:
        inside |= (y - cy) ** 2 + (x - cx) ** 2 < r * r
    out = np.broadcast_to(_WHITE, (tile, tile, 3)).copy()
    out[inside] = _PINK
    return out


def _level(
    context: Dataset, rows: int, columns: int, tile: int, scale: int, discs: NDArray[np.float64]
) -> Dataset:
    ds = Dataset()
    ds.update(context)
    ds.SOPClassUID = VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE
    ds.SOPInstanceUID = derived_uid(str(context.SeriesInstanceUID), str(scale))
    ds.InstanceNumber = scale.bit_length()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.Rows = ds.Columns = tile
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.LossyImageCompression = "00"
    ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = rows, columns
    ds.TotalPixelMatrixFocalPlanes = 1
    origin = Dataset()
    origin.XOffsetInSlideCoordinateSystem, origin.YOffsetInSlideCoordinateSystem = ORIGIN
    ds.TotalPixelMatrixOriginSequence = [origin]
    ds.ImageOrientationSlide = [0, -1, 0, -1, 0, 0]
    spacing = SPACING * scale
    ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = columns * spacing, rows * spacing
    ds.ImagedVolumeDepth = 0.001
    measures = Dataset()
    measures.PixelSpacing = [spacing, spacing]
    measures.SliceThickness = 0.001
    frame_type = Dataset()
    frame_type.FrameType = ds.ImageType
    shared = Dataset()
    shared.PixelMeasuresSequence = [measures]
    shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
    ds.SharedFunctionalGroupsSequence = [shared]
    organisation = Dataset()
    organisation.DimensionOrganizationUID = derived_uid(str(ds.SOPInstanceUID), "dimensions")
    ds.DimensionOrganizationSequence = [organisation]
    ds.DimensionOrganizationType = "TILED_FULL"
    return ds


def write_slide_phantom(
    folder: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (1000, 1500),
    tile: int = 256,
    levels: int = 3,
    blank: bool = False,
    seed: int = 0,
) -> list[Path]:
    """Write a synthetic slide's pyramid, one file per level (``level0.dcm`` finest).

    Parameters
    ----------
    folder
        Created if needed.
    size
        Rows and columns of the finest level.
    tile
        Tile rows and columns (8..1024).
    levels
        Levels, each half the size of the previous one.
    blank
        White glass only (no tissue): every tile alike, written fast at any size.
    seed
        Places the tissue and derives the UIDs.

    Raises
    ------
    ConfigError
        Sizes or tile sizes outside those bounds.
    """
    if not 8 <= tile <= 1024 or min(size) < 1 or levels < 1:
        raise ConfigError(
            f"cannot make a slide of {size} pixels in tiles of {tile} with {levels} levels",
            attribute="size",
            hint="tile 8..1024, positive sizes, at least one level",
        )
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    count = 0 if blank else 6
    discs = np.column_stack(
        [
            rng.uniform(0, size[0], count),
            rng.uniform(0, size[1], count),
            rng.uniform(0.05, 0.2, count) * min(size),
        ]
    )
    context = _context(seed)
    files = []
    for k in range(levels):
        scale = 2**k
        rows, columns = -(-size[0] // scale), -(-size[1] // scale)
        ds = _level(context, rows, columns, tile, scale, discs)
        fragments = _fragments(rows, columns, tile, scale, discs)
        ds.NumberOfFrames = len(fragments)
        ds.PixelData = encapsulate(fragments)
        ds["PixelData"].VR = "OB"
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = RLELossless
        ds.file_meta.MediaStorageSOPClassUID = UID(VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(str(ds.SOPInstanceUID))
        path = out / f"level{k}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def _fragments(
    rows: int, columns: int, tile: int, scale: int, discs: NDArray[np.float64]
) -> list[bytes]:
    """RLE-compress every tile in TILED_FULL order; identical tiles are compressed once."""
    white = np.broadcast_to(_WHITE, (tile, tile, 3))
    encoded: dict[bytes, bytes] = {}
    fragments = []
    for r in range(-(-rows // tile)):
        for c in range(-(-columns // tile)):
            found = _tile(r, c, tile, scale, discs)
            pixels = white if found is None else found
            key = b"white" if found is None else hashlib.sha256(pixels.tobytes()).digest()
            if key not in encoded:
                encoded[key] = encode_frames(
                    np.ascontiguousarray(pixels)[None],
                    RLELossless,
                    photometric_interpretation="RGB",
                    workers=1,
                )[0]
            fragments.append(encoded[key])
    return fragments
