"""A deterministic synthetic CT study with known ground truth.

The phantom is a trunk (chest and upper abdomen) drawn from simple shapes in
patient coordinates (LPS, mm), so any matrix size or slice count samples the
same anatomy: body with a fat layer, both lungs, spine and ribs, liver, three
lung nodules and a liver lesion of known diameters. Values are realistic
Hounsfield units with Gaussian noise; the same ``seed`` gives byte-identical
files (UIDs included).

Label values of the ground truth:

=====  ==============
label  name
=====  ==============
1      body
2      lung_left
3      lung_right
4      bone
5      liver
6      lung_nodule
7      liver_lesion
=====  ==============

Examples
--------
>>> ph = generate_phantom(slices=24, size=64, seed=1)
>>> ph.hu.shape, ph.labels.array.max()
((24, 64, 64), np.uint8(7))
>>> sorted(ph.label_names.values())[:3]
['body', 'bone', 'liver']
>>> [round(les.diameter_mm) for les in ph.lesions]
[10, 14, 18, 24]

A follow-up visit of the same patient (``follow_up=FollowUp(...)``) has the same
anatomy, one lesion resolved, one grown, one shrunk, one stable and one new, and the
patient shifted and turned on the table by a known amount:

>>> later = generate_phantom(slices=24, size=64, seed=1, follow_up=FollowUp(shift_mm=(4, -2, 6)))
>>> [(les.status, round(les.diameter_mm)) for les in later.lesions]
[('grown', 20), ('shrunk', 12), ('stable', 24), ('new', 12)]
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, UID, CTImageStorage, ExplicitVRLittleEndian

from radbridge.errors import ConfigError
from radbridge.geometry import SliceRef, Volume, affine_from_planes
from radbridge.models.reference_labels import REFERENCE_LABELS
from radbridge.uids import derived_uid

__all__ = [
    "LABEL_NAMES",
    "FollowUp",
    "Lesion",
    "Phantom",
    "PhantomFiles",
    "generate_phantom",
    "write_phantom",
]

#: Label value → name: the reference anatomy (names resolve in :mod:`radbridge.codes`).
LABEL_NAMES: dict[int, str] = REFERENCE_LABELS
_HU = {
    "air": -1000.0,
    "fat": -100.0,
    "soft": 40.0,
    "lung": -850.0,
    "bone": 700.0,
    "liver": 60.0,
    "nodule": 30.0,
    "lesion": 15.0,
    "canal": 10.0,
}
FIELD_OF_VIEW_MM = 400.0
Z_EXTENT_MM = 300.0
NOISE_HU = 12.0
IMPLEMENTATION_VERSION = "RADBRIDGE_010"


@dataclass(frozen=True)
class Lesion:
    """A spherical lesion of the phantom (ground truth).

    ``centre_lps`` is in the study's own frame of reference. On a follow-up visit,
    ``status`` says what happened since the baseline (``new``, ``grown``, ``shrunk``,
    ``stable``; resolved lesions are absent) and ``baseline_index`` is the lesion's
    position in the baseline's list (``None`` for a new one).
    """

    label: int
    name: str
    centre_lps: tuple[float, float, float]
    diameter_mm: float
    status: str = "baseline"
    baseline_index: int | None = None


@dataclass(frozen=True)
class FollowUp:
    """A later visit of the phantom's patient (``generate_phantom(follow_up=...)``).

    The lesions change in a fixed, known way: the 10 mm nodule resolves, the 14 mm
    one grows to 20 mm, the 18 mm one shrinks to 12 mm, the liver lesion stays
    24 mm and a new 12 mm nodule appears in the left lung. The patient lies
    ``shift_mm`` (x, y, z in mm, LPS) away and turned ``rotation_deg`` about the
    table's long axis (z); with neither, the follow-up shares the baseline's frame of
    reference, otherwise it has its own.

    Parameters
    ----------
    visit
        Visit number (1 = first follow-up); part of the study's UIDs.
    days
        Days after the baseline (the study date).
    shift_mm, rotation_deg
        The known rigid motion of the patient, scanner = R(rotation) @ anatomy + shift.
    """

    visit: int = 1
    days: int = 90
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_deg: float = 0.0

    @property
    def moved(self) -> bool:
        """Whether the patient moved (the follow-up then has its own frame of reference)."""
        return any(self.shift_mm) or bool(self.rotation_deg)

    def to_scanner(self, point: tuple[float, float, float]) -> tuple[float, float, float]:
        """Map an anatomy (baseline) point to this visit's patient coordinates."""
        t = np.deg2rad(self.rotation_deg)
        x, y, z = point
        return (
            float(np.cos(t) * x - np.sin(t) * y + self.shift_mm[0]),
            float(np.sin(t) * x + np.cos(t) * y + self.shift_mm[1]),
            float(z + self.shift_mm[2]),
        )

    def to_anatomy(
        self, x: NDArray[np.float64], y: NDArray[np.float64], z: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """Map scanner coordinates of a slice back to the anatomy's."""
        t = np.deg2rad(self.rotation_deg)
        dx, dy = x - self.shift_mm[0], y - self.shift_mm[1]
        return (
            np.cos(t) * dx + np.sin(t) * dy,
            -np.sin(t) * dx + np.cos(t) * dy,
            z - self.shift_mm[2],
        )


#: What happens to each baseline lesion at a follow-up: (status, new diameter in mm).
FOLLOW_UP_CHANGES: tuple[tuple[str, float], ...] = (
    ("resolved", 0.0),
    ("grown", 20.0),
    ("shrunk", 12.0),
    ("stable", 24.0),
)
#: The lesion that appears at a follow-up (anatomy coordinates, LPS mm).
NEW_LESION = (6, "lung_nodule", (70.0, 30.0, 20.0), 12.0)


@dataclass(frozen=True, eq=False)
class Phantom:
    """A generated phantom: CT in HU, ground-truth labels and lesions."""

    hu: Volume
    labels: Volume
    label_names: dict[int, str]
    lesions: tuple[Lesion, ...]
    seed: int
    follow_up: FollowUp | None = None


@dataclass(frozen=True)
class PhantomFiles:
    """Where :func:`write_phantom` put its output."""

    dicom_dir: Path
    labels_nifti: Path | None
    labels_npy: Path
    labels_json: Path
    truth_json: Path
    study_instance_uid: str
    series_instance_uid: str


def _lesions(rng: np.random.Generator) -> tuple[Lesion, ...]:
    jitter = rng.uniform(-6.0, 6.0, size=(4, 3))
    base = [
        (6, "lung_nodule", (85.0, 5.0, 75.0), 10.0),
        (6, "lung_nodule", (-80.0, 15.0, 40.0), 14.0),
        (6, "lung_nodule", (-65.0, -15.0, 100.0), 18.0),
        (7, "liver_lesion", (-75.0, -5.0, -55.0), 24.0),
    ]
    return tuple(
        Lesion(label, name, tuple(float(c + j) for c, j in zip(centre, jit, strict=True)), d)  # type: ignore[arg-type]
        for (label, name, centre, d), jit in zip(base, jitter, strict=True)
    )


def _ellipsoid(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    z: float,
    centre: tuple[float, float, float],
    axes: tuple[float, float, float],
) -> NDArray[np.bool_]:
    return ((x - centre[0]) / axes[0]) ** 2 + ((y - centre[1]) / axes[1]) ** 2 + (
        (z - centre[2]) / axes[2]
    ) ** 2 <= 1.0


def _slice_labels(
    x: NDArray[np.float64], y: NDArray[np.float64], z: float, lesions: tuple[Lesion, ...]
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Labels of one axial slice at height ``z`` plus the fat mask (anatomy coordinates)."""
    labels = np.zeros(x.shape, np.uint8)
    taper = 1.0 - 0.08 * (z / (Z_EXTENT_MM / 2)) ** 2
    body = (x / (170.0 * taper)) ** 2 + (y / 120.0) ** 2 <= 1.0
    inner = (x / (160.0 * taper)) ** 2 + (y / 110.0) ** 2 <= 1.0
    labels[body] = 1
    fat = body & ~inner
    lung_left = _ellipsoid(x, y, z, (78.0, 8.0, 65.0), (58.0, 78.0, 90.0)) & inner
    lung_right = _ellipsoid(x, y, z, (-78.0, 8.0, 60.0), (60.0, 78.0, 95.0)) & inner
    liver = _ellipsoid(x, y, z, (-60.0, -5.0, -50.0), (85.0, 72.0, 65.0)) & inner & ~lung_right
    labels[lung_left] = 2
    labels[lung_right] = 3
    labels[liver] = 5
    # Spine: a vertebral body with an inter-vertebral disc every 30 mm, and the canal.
    vertebra = (x**2 + (y - 62.0) ** 2 <= 18.0**2) & ((z + 1000.0) % 30.0 >= 5.0)
    arch = (x**2 + (y - 88.0) ** 2 <= 14.0**2) & ~(x**2 + (y - 88.0) ** 2 <= 7.0**2)
    bone = vertebra | arch
    if -20.0 <= z <= 150.0:  # ribs around the thorax, one every 25 mm
        shell = ((x / 152.0) ** 2 + (y / 104.0) ** 2 <= 1.0) & ~(
            (x / 143.0) ** 2 + (y / 96.0) ** 2 <= 1.0
        )
        bone |= shell & ((z + 1000.0) % 25.0 < 10.0) & (np.abs(x) > 30.0)
    labels[bone & body] = 4
    for lesion in lesions:
        sphere = _ellipsoid(x, y, z, lesion.centre_lps, (lesion.diameter_mm / 2,) * 3)
        labels[sphere & body] = lesion.label
    return labels, fat & (labels == 1)


def _draw_slice(
    x: NDArray[np.float64],
    y: NDArray[np.float64],
    z: float,
    lesions: tuple[Lesion, ...],
    follow_up: FollowUp | None,
    labels: NDArray[np.uint8],
    hu: NDArray[np.float32],
    values: NDArray[np.float32],
) -> None:
    """Fill one slice's labels and HU (before noise), at scanner coordinates x, y, z."""
    if follow_up is not None:
        x, y, z = follow_up.to_anatomy(x, y, z)
    lab, fat = _slice_labels(x, y, z, lesions)
    labels[...] = lab
    hu[...] = values[lab]
    hu[fat] = _HU["fat"]
    hu[(x**2 + (y - 88.0) ** 2 <= 7.0**2) & (lab == 1)] = _HU["canal"]


def _follow_up_lesions(baseline: tuple[Lesion, ...], follow_up: FollowUp) -> tuple[Lesion, ...]:
    """Return the lesions of a follow-up visit, in anatomy coordinates."""
    out = [
        Lesion(les.label, les.name, les.centre_lps, diameter, status, index)
        for index, (les, (status, diameter)) in enumerate(
            zip(baseline, FOLLOW_UP_CHANGES, strict=True)
        )
        if status != "resolved"
    ]
    label, name, centre, diameter = NEW_LESION
    out.append(Lesion(label, name, centre, diameter, "new", None))
    return tuple(out)


def generate_phantom(
    *,
    slices: int = 100,
    size: int = 512,
    seed: int = 0,
    follow_up: FollowUp | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Phantom:
    """Generate the phantom in memory.

    Parameters
    ----------
    slices
        Number of axial slices over the 300 mm the phantom spans (>= 2).
    size
        Rows and columns of each slice over a 400 mm field of view (>= 16).
    seed
        Seed for the noise and the small jitter of lesion positions.
    follow_up
        Make a later visit of the same patient instead (see :class:`FollowUp`):
        same anatomy and lesion positions, changed lesions, known motion, its own
        noise.
    progress
        Called with (slices done, slices) after each slice is drawn.

    Returns
    -------
    Phantom
        ``hu`` is int16 Hounsfield units; ``labels`` is uint8 on the same grid,
        slices ordered from inferior to superior.
    """
    if slices < 2 or size < 16:
        raise ConfigError(
            f"a phantom needs at least 2 slices and 16x16 pixels, got {slices} and {size}",
            attribute="slices/size",
        )
    rng = np.random.default_rng(seed)
    lesions = _lesions(rng)
    if follow_up is not None:
        lesions = _follow_up_lesions(lesions, follow_up)
        rng = np.random.default_rng([seed, follow_up.visit])
    pixel = FIELD_OF_VIEW_MM / size
    step = Z_EXTENT_MM / slices
    coords = -FIELD_OF_VIEW_MM / 2 + pixel / 2 + pixel * np.arange(size)
    y, x = np.meshgrid(coords, coords, indexing="ij")  # rows run along y (posterior)
    z0 = -Z_EXTENT_MM / 2 + step / 2
    labels = np.zeros((slices, size, size), np.uint8)
    hu = np.empty((slices, size, size), np.float32)
    values = np.array(
        [
            _HU["air"],
            _HU["soft"],
            _HU["lung"],
            _HU["lung"],
            _HU["bone"],
            _HU["liver"],
            _HU["nodule"],
            _HU["lesion"],
        ],
        np.float32,
    )
    for k in range(slices):
        _draw_slice(x, y, z0 + k * step, lesions, follow_up, labels[k], hu[k], values)
        if progress is not None:
            progress(k + 1, slices)
    hu += rng.normal(0.0, NOISE_HU, size=hu.shape).astype(np.float32)
    hu[labels == 0] = _HU["air"] + rng.normal(0.0, 3.0, size=int((labels == 0).sum()))
    affine = affine_from_planes(
        (coords[0], coords[0], z0), (1, 0, 0, 0, 1, 0), (pixel, pixel), (0.0, 0.0, step)
    )
    key = ["radbridge-phantom", str(seed), str(slices), str(size), "for"]
    if follow_up is not None and follow_up.moved:
        key.append(f"visit {follow_up.visit}")
        lesions = tuple(
            replace(les, centre_lps=follow_up.to_scanner(les.centre_lps)) for les in lesions
        )
    frame_uid = derived_uid(*key)
    hu_int = np.clip(np.rint(hu), -1024, 3071).astype(np.int16)
    return Phantom(
        Volume(hu_int, affine, frame_uid),
        Volume(labels, affine, frame_uid),
        dict(LABEL_NAMES),
        lesions,
        seed,
        follow_up,
    )


#: The header attributes every slice of every phantom shares (the rest depend on the
#: seed, visit and grid: :func:`_base_dataset`).
_FIXED_HEADER: dict[str, Any] = {
    "SpecificCharacterSet": "ISO_IR 100",
    "ImageType": ["ORIGINAL", "PRIMARY", "AXIAL"],
    "SOPClassUID": CTImageStorage,
    "StudyTime": "090000",
    "SeriesTime": "090000",
    "ContentTime": "090000",
    "AcquisitionTime": "090000",
    "Modality": "CT",
    "Manufacturer": "radbridge",
    "ManufacturerModelName": "synthetic phantom",
    "SoftwareVersions": "0.1.0",
    "ReferringPhysicianName": "",
    "StudyDescription": "RADBRIDGE PHANTOM CHEST ABDOMEN",
    "SeriesDescription": "Phantom CT 300mm",
    "PatientName": "Phantom^Radbridge",
    "PatientBirthDate": "19700101",
    "PatientSex": "O",
    "PatientAge": "056Y",
    "BodyPartExamined": "CHEST",
    "KVP": "120",
    "PatientPosition": "FFS",
    "SeriesNumber": 2,
    "AcquisitionNumber": 1,
    "PositionReferenceIndicator": "",
    "ImageOrientationPatient": [1, 0, 0, 0, 1, 0],
    "SamplesPerPixel": 1,
    "PhotometricInterpretation": "MONOCHROME2",
    "BitsAllocated": 16,
    "BitsStored": 12,
    "HighBit": 11,
    "PixelRepresentation": 0,
    "RescaleIntercept": "-1024",
    "RescaleSlope": "1",
    "RescaleType": "HU",
    "WindowCenter": "40",
    "WindowWidth": "400",
}


def _base_dataset(phantom: Phantom, uids: dict[str, str]) -> Dataset:
    ds = Dataset()
    for keyword, value in _FIXED_HEADER.items():
        setattr(ds, keyword, value)
    date = _study_date(phantom).strftime("%Y%m%d")
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = date
    visit = phantom.follow_up.visit if phantom.follow_up is not None else 0
    ds.AccessionNumber = f"RBPH{phantom.seed:04d}" + (f"V{visit}" if visit else "")
    ds.PatientID = f"RB-PHANTOM-{phantom.seed}"
    ds.StudyInstanceUID = uids["study"]
    ds.SeriesInstanceUID = uids["series"]
    ds.StudyID = str(visit + 1)
    ds.FrameOfReferenceUID = phantom.hu.frame_of_reference_uid
    spacing = phantom.hu.spacing
    ds.PixelSpacing = [f"{spacing[1]:.6g}", f"{spacing[2]:.6g}"]
    ds.SliceThickness = f"{spacing[0]:.6g}"
    ds.Rows, ds.Columns = phantom.hu.shape[1], phantom.hu.shape[2]
    return ds


def _phantom_uids(phantom: Phantom) -> dict[str, str]:
    key: tuple[str, ...] = (
        "radbridge-phantom",
        str(phantom.seed),
        *(str(n) for n in phantom.hu.shape),
    )
    if phantom.follow_up is not None:
        key += (f"visit {phantom.follow_up.visit}",)
    return {"study": derived_uid(*key, "study"), "series": derived_uid(*key, "series")}


def _study_date(phantom: Phantom) -> _dt.date:
    days = phantom.follow_up.days if phantom.follow_up is not None else 0
    return _dt.date(2026, 1, 1) + _dt.timedelta(days=days)


def write_phantom(
    out_dir: str | os.PathLike[str],
    *,
    slices: int = 100,
    size: int = 512,
    seed: int = 0,
    nifti: bool | None = None,
    follow_up: FollowUp | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> PhantomFiles:
    """Write the phantom as single-frame CT files plus its ground truth.

    Layout of ``out_dir``: ``dicom/CT000001.dcm`` ... (Instance Number 1 is the
    most superior slice, so file order is *not* slice order), ``labels.npy``
    (uint8 ``[slice, row, column]`` in the slice order of ``radbridge info``),
    ``labels.nii.gz`` (when nibabel is installed), ``labels.json`` (label →
    name, the form ``radbridge seg encode --labels`` takes) and
    ``phantom.json`` (lesion centres and diameters, geometry, UIDs).

    Parameters
    ----------
    out_dir
        Output folder (created; existing phantom files are overwritten).
    slices, size, seed
        See :func:`generate_phantom`.
    nifti
        Write ``labels.nii.gz``: ``None`` writes it when nibabel is installed,
        ``True`` requires it.
    follow_up
        Write a later visit of the same patient (see :class:`FollowUp`).
    progress
        Called with (steps done, steps) as slices are drawn and then written
        (``2 * slices`` steps).
    """
    report = progress or (lambda done, total: None)
    phantom = generate_phantom(
        slices=slices,
        size=size,
        seed=seed,
        follow_up=follow_up,
        progress=lambda k, n: report(k, 2 * n),
    )
    out = Path(out_dir)
    dicom_dir = out / "dicom"
    dicom_dir.mkdir(parents=True, exist_ok=True)
    uids = _phantom_uids(phantom)
    base = _base_dataset(phantom, uids)
    stored = (phantom.hu.array.astype(np.int32) + 1024).astype(np.uint16)
    positions = phantom.hu.geometry.slice_positions
    refs = []
    for k in range(slices):
        instance = slices - k  # 1 = most superior
        ds = Dataset()
        ds.update(base)
        sop_uid = derived_uid(uids["series"], "instance", str(instance))
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [f"{v:.6f}" for v in positions[k]]
        ds.SliceLocation = f"{positions[k][2]:.6f}"
        ds.PixelData = stored[k].tobytes()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = UID(sop_uid)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = IMPLEMENTATION_VERSION
        ds.file_meta = meta
        ds.save_as(dicom_dir / f"CT{instance:06d}.dcm", enforce_file_format=True)
        refs.append(SliceRef(CTImageStorage, sop_uid))
        report(slices + k + 1, 2 * slices)
    labels_npy = out / "labels.npy"
    np.save(labels_npy, phantom.labels.array)
    labels_nifti = _write_nifti(phantom, out / "labels.nii.gz", nifti)
    labels_json = out / "labels.json"
    labels_json.write_text(
        json.dumps({str(k): v for k, v in phantom.label_names.items()}, indent=2) + "\n"
    )
    truth_json = out / "phantom.json"
    truth_json.write_text(json.dumps(_truth(phantom, uids, refs), indent=2) + "\n")
    return PhantomFiles(
        dicom_dir, labels_nifti, labels_npy, labels_json, truth_json, uids["study"], uids["series"]
    )


def _write_nifti(phantom: Phantom, path: Path, nifti: bool | None) -> Path | None:
    from radbridge._optional import require
    from radbridge.errors import OptionalDependencyError

    try:
        require("nibabel", "nifti", purpose="write the phantom's labels as NIfTI")
    except OptionalDependencyError:
        if nifti:
            raise
        return None
    if nifti is False:
        return None
    from radbridge.io.nifti import write_image

    return write_image(phantom.labels, path)


def _truth(phantom: Phantom, uids: dict[str, str], refs: list[SliceRef]) -> dict[str, object]:
    spacing = phantom.labels.spacing
    voxel_mm3 = spacing[0] * spacing[1] * spacing[2]
    counts = np.bincount(phantom.labels.array.ravel(), minlength=len(LABEL_NAMES) + 1)
    return {
        "generator": f"radbridge.io.phantom (seed {phantom.seed})",
        "created": _study_date(phantom).isoformat(),
        "study_instance_uid": uids["study"],
        "series_instance_uid": uids["series"],
        "frame_of_reference_uid": phantom.labels.frame_of_reference_uid,
        "geometry": phantom.labels.geometry.to_dict(),
        "labels": {str(k): v for k, v in phantom.label_names.items()},
        "label_volumes_mm3": {
            str(k): round(float(counts[k]) * voxel_mm3, 3) for k in phantom.label_names
        },
        "lesions": [
            {
                "label": les.label,
                "name": les.name,
                "centre_lps": list(les.centre_lps),
                "diameter_mm": les.diameter_mm,
                "status": les.status,
                "baseline_index": les.baseline_index,
            }
            for les in phantom.lesions
        ],
        "follow_up": None
        if phantom.follow_up is None
        else {
            "visit": phantom.follow_up.visit,
            "days": phantom.follow_up.days,
            "shift_mm": list(phantom.follow_up.shift_mm),
            "rotation_deg": phantom.follow_up.rotation_deg,
        },
        "sop_instance_uids": [r.sop_instance_uid for r in refs],
    }
