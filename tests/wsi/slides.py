"""A synthetic tiled slide, written with pydicom and NumPy only (not with radbridge).

``write_slide`` writes a small pyramid of VL Whole Slide Microscopy Images: each
level half the size of the one before, TILED_FULL (every tile, in the implicit
order) or TILED_SPARSE (tiles in a shuffled order with their Plane Position (Slide),
background tiles optionally left out), RGB brightfield or several monochrome
fluorescence optical paths, native, RLE Lossless or (RGB) JPEG baseline tiles stored
as YBR_FULL_422, as most scanners write them. The pixels are a deterministic
pattern, so readers can be checked value for value against ``Slide.matrix``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, RLELossless, generate_uid

WSI = "1.2.840.10008.5.1.4.1.1.77.1.6"
ORIENTATION = [0.0, -1.0, 0.0, -1.0, 0.0, 0.0]
ORIGIN = (20.0, 40.0)
BASE_SPACING = 0.00025  # mm (0.25 µm)


def code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def pattern(rows: int, columns: int, samples: int, scale: int, seed: int = 0) -> np.ndarray:
    """Tissue-like blobs on white (RGB), or bright spots on black (monochrome)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    y, x = y * scale, x * scale
    inside = np.zeros((rows, columns), bool)
    for cy, cx, r in rng.integers([0, 0, 40], [rows * scale, columns * scale, 160], (6, 3)):
        inside |= (y - cy) ** 2 + (x - cx) ** 2 < r**2
    if samples == 1:
        return np.where(inside, (x + y) % 200 + 50, 0).astype(np.uint8)
    out = np.full((rows, columns, 3), 255, np.uint8)
    out[inside] = np.stack([(x * 7) % 256, (y * 5) % 256, (x + y) % 256], -1)[inside]
    return out


@dataclass
class Slide:
    """What was written: files per level and each level's full matrix per optical path."""

    folder: Path
    files: list[list[Path]] = field(default_factory=list)
    matrices: list[list[np.ndarray]] = field(default_factory=list)  # [level][path]
    tile: int = 64
    series_uid: str = ""
    frame_of_reference_uid: str = ""


def _base(study: Dataset, series_uid: str, frame_uid: str, number: int) -> Dataset:
    ds = Dataset()
    for element in study:
        ds.add(element)
    ds.SOPClassUID = WSI
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "SM"
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = "SLIDE_CORNER"
    ds.Manufacturer = "radbridge tests"
    ds.ManufacturerModelName = "synthetic scanner"
    ds.DeviceSerialNumber = "1"
    ds.SoftwareVersions = "1"
    now = dt.datetime(2026, 1, 2, 3, 4, 5)
    ds.ContentDate, ds.ContentTime = now.strftime("%Y%m%d"), now.strftime("%H%M%S")
    ds.AcquisitionDateTime = now.strftime("%Y%m%d%H%M%S")
    ds.AcquisitionDuration = 1.0
    ds.VolumetricProperties = "VOLUME"
    ds.SpecimenLabelInImage = "NO"
    ds.BurnedInAnnotation = "NO"
    ds.FocusMethod = "AUTO"
    ds.ExtendedDepthOfField = "NO"
    ds.AcquisitionContextSequence = Sequence()
    ds.ContainerIdentifier = "SLIDE-1"
    ds.IssuerOfTheContainerIdentifierSequence = Sequence()
    ds.ContainerTypeCodeSequence = [code("433466003", "SCT", "Microscope slide")]
    specimen = Dataset()
    specimen.SpecimenIdentifier = "SPECIMEN-1"
    specimen.SpecimenUID = "2.25.4242"
    specimen.IssuerOfTheSpecimenIdentifierSequence = Sequence()
    specimen.SpecimenPreparationSequence = Sequence()
    ds.SpecimenDescriptionSequence = [specimen]
    return ds


def _study() -> Dataset:
    ds = Dataset()
    ds.PatientName = "Slide^Synthetic"
    ds.PatientID = "WSI-1"
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.StudyInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = "20260102", "030405"
    ds.ReferringPhysicianName = ""
    ds.StudyID = "1"
    ds.AccessionNumber = "A1"
    return ds


def _optical_paths(ds: Dataset, samples: int, paths: int) -> None:
    items = []
    for k in range(paths):
        item = Dataset()
        item.OpticalPathIdentifier = str(k + 1)
        if samples == 3:
            item.OpticalPathDescription = "Brightfield"
            item.IlluminationTypeCodeSequence = [code("111744", "DCM", "Brightfield illumination")]
            item.IlluminationColorCodeSequence = [code("414298005", "SCT", "Full Spectrum")]
            item.ICCProfile = _srgb()
        else:
            item.OpticalPathDescription = f"Channel {k + 1}"
            item.IlluminationTypeCodeSequence = [
                code("111743", "DCM", "Epifluorescence illumination")
            ]
            item.IlluminationWaveLength = 400.0 + 100 * k
        items.append(item)
    ds.OpticalPathSequence = items
    ds.NumberOfOpticalPaths = paths


def _srgb() -> bytes:
    from PIL import ImageCms

    return bytes(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _pixels(ds: Dataset, samples: int, tile: int) -> None:
    ds.Rows = ds.Columns = tile
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        ds.PlanarConfiguration = 0
    else:
        ds.PresentationLUTShape = "IDENTITY"
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.LossyImageCompression = "00"


def _tiles(matrix: np.ndarray, tile: int) -> tuple[np.ndarray, int, int]:
    rows, columns = matrix.shape[:2]
    down, across = -(-rows // tile), -(-columns // tile)
    fill = 255 if matrix.ndim == 3 else 0
    padded = np.full((down * tile, across * tile, *matrix.shape[2:]), fill, np.uint8)
    padded[:rows, :columns] = matrix
    shaped = padded.reshape(down, tile, across, tile, *matrix.shape[2:]).swapaxes(1, 2)
    return shaped.reshape(down * across, tile, tile, *matrix.shape[2:]), down, across


def _frames_and_groups(ds, matrices, tile, sparse, spacing, rng, omit):
    """Frames (all paths) and, for TILED_SPARSE, the per-frame functional groups."""
    frames, groups = [], []
    for k, matrix in enumerate(matrices):
        tiles, _, across = _tiles(matrix, tile)
        for index, frame in enumerate(tiles):
            fill = 255 if frame.ndim == 3 else 0
            if sparse and omit and np.all(frame == fill):
                continue  # a background tile: left out
            frames.append(frame)
            if sparse:
                r, c = divmod(index, across)
                item = Dataset()
                pos = Dataset()
                pos.RowPositionInTotalImagePixelMatrix = r * tile + 1
                pos.ColumnPositionInTotalImagePixelMatrix = c * tile + 1
                pos.XOffsetInSlideCoordinateSystem = ORIGIN[0] - r * tile * spacing
                pos.YOffsetInSlideCoordinateSystem = ORIGIN[1] - c * tile * spacing
                pos.ZOffsetInSlideCoordinateSystem = 0.0
                item.PlanePositionSlideSequence = [pos]
                path = Dataset()
                path.OpticalPathIdentifier = str(k + 1)
                item.OpticalPathIdentificationSequence = [path]
                groups.append(item)
    if sparse:  # any order is allowed: shuffle to prove positions are read, not assumed
        order = rng.permutation(len(frames))
        frames, groups = [frames[i] for i in order], [groups[i] for i in order]
        ds.PerFrameFunctionalGroupsSequence = groups
    return np.stack(frames)


def _dimensions(ds: Dataset, sparse: bool) -> None:
    organisation = generate_uid()
    item = Dataset()
    item.DimensionOrganizationUID = organisation
    ds.DimensionOrganizationSequence = [item]
    dims = []
    for pointer, label in ((0x0048021F, "Row Position"), (0x0048021E, "Column Position")):
        dim = Dataset()
        dim.DimensionOrganizationUID = organisation
        dim.DimensionIndexPointer = pointer
        dim.FunctionalGroupPointer = 0x0048021A
        dim.DimensionDescriptionLabel = label
        dims.append(dim)
    ds.DimensionIndexSequence = dims
    ds.DimensionOrganizationType = "TILED_SPARSE" if sparse else "TILED_FULL"
    if sparse:  # frames name their position: index values follow it
        for group in ds.PerFrameFunctionalGroupsSequence:
            content = Dataset()
            pos = group.PlanePositionSlideSequence[0]
            content.DimensionIndexValues = [
                int(pos.RowPositionInTotalImagePixelMatrix),
                int(pos.ColumnPositionInTotalImagePixelMatrix),
            ]
            group.FrameContentSequence = [content]


def _jpeg(ds: Dataset, frames: np.ndarray) -> None:
    """JPEG baseline tiles with 4:2:2 chrominance (Pillow), Photometric YBR_FULL_422."""
    import io

    from PIL import Image
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit

    encoded = []
    for frame in frames:
        buffer = io.BytesIO()
        Image.fromarray(frame, "RGB").save(buffer, "JPEG", quality=95, subsampling=1)
        encoded.append(buffer.getvalue())
    ds.PixelData = encapsulate(encoded)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.PhotometricInterpretation = "YBR_FULL_422"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = "10"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit


def write_slide(
    folder: Path,
    *,
    size: tuple[int, int] = (300, 420),
    tile: int = 64,
    levels: int = 3,
    samples: int = 3,
    optical_paths: int = 1,
    sparse: bool = False,
    omit_background: bool = False,
    rle: bool = False,
    jpeg: bool = False,
    seed: int = 0,
) -> Slide:
    """Write a pyramid of ``levels`` images (level k: size / 2**k) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    study = _study()
    out = Slide(folder, tile=tile, series_uid=generate_uid(), frame_of_reference_uid=generate_uid())
    for level in range(levels):
        scale = 2**level
        rows, columns = -(-size[0] // scale), -(-size[1] // scale)
        spacing = BASE_SPACING * scale
        matrices = [
            pattern(rows, columns, samples, scale, seed=seed + k) for k in range(optical_paths)
        ]
        ds = _base(study, out.series_uid, out.frame_of_reference_uid, level + 1)
        ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
        _optical_paths(ds, samples, optical_paths)
        _pixels(ds, samples, tile)
        ds.TotalPixelMatrixRows, ds.TotalPixelMatrixColumns = rows, columns
        ds.TotalPixelMatrixFocalPlanes = 1
        origin = Dataset()
        origin.XOffsetInSlideCoordinateSystem, origin.YOffsetInSlideCoordinateSystem = ORIGIN
        ds.TotalPixelMatrixOriginSequence = [origin]
        ds.ImageOrientationSlide = ORIENTATION
        ds.ImagedVolumeWidth = columns * spacing
        ds.ImagedVolumeHeight = rows * spacing
        ds.ImagedVolumeDepth = 1.0
        shared = Dataset()
        measures = Dataset()
        measures.PixelSpacing = [spacing, spacing]
        measures.SliceThickness = 0.001
        shared.PixelMeasuresSequence = [measures]
        frame_type = Dataset()
        frame_type.FrameType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
        shared.WholeSlideMicroscopyImageFrameTypeSequence = [frame_type]
        ds.SharedFunctionalGroupsSequence = [shared]
        frames = _frames_and_groups(ds, matrices, tile, sparse, spacing, rng, omit_background)
        _dimensions(ds, sparse)
        ds.NumberOfFrames = len(frames)
        ds.PixelData = frames.tobytes()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = WSI
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if rle:
            ds.compress(RLELossless, frames)
        if jpeg:
            _jpeg(ds, frames)
        path = folder / f"level{level}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.files.append([path])
        out.matrices.append(matrices)
    return out


def split_optical_paths(slide: Slide) -> Slide:
    """Rewrite each TILED_FULL level as one image per optical path (multi-channel scanners)."""
    import copy

    from pydicom import dcmread

    for files in slide.files:
        ds = dcmread(files[0])
        frames = ds.pixel_array
        paths = len(ds.OpticalPathSequence)
        per = len(frames) // paths
        parts = []
        for k in range(paths):
            part = copy.deepcopy(ds)
            part.SOPInstanceUID = generate_uid()
            part.file_meta.MediaStorageSOPInstanceUID = part.SOPInstanceUID
            part.OpticalPathSequence = [ds.OpticalPathSequence[k]]
            part.NumberOfOpticalPaths = 1
            part.NumberOfFrames = per
            part.PixelData = frames[k * per : (k + 1) * per].tobytes()
            target = files[0].with_name(f"{files[0].stem}-path{k + 1}.dcm")
            part.save_as(target, enforce_file_format=True)
            parts.append(target)
        files[0].unlink()
        files[:] = parts
    return slide
