"""A classical reference CT model (no weights): body, lungs, bone, liver, nodules, lesions.

It exists so the gateway has a real model to run anywhere: thresholds, connected
components and hole filling on Hounsfield units (SciPy ``ndimage``), tuned on
radbridge's phantom and sane on real CT. It is not a diagnostic tool.

Labels (the phantom's numbering): 1 body, 2 lung_left, 3 lung_right, 4 bone,
5 liver, 6 lung_nodule, 7 liver_lesion.

Steps, all vectorised:

1. **body**: HU > -500, the largest connected component, holes filled slice by slice;
2. **lungs**: air (< -400 HU) inside the body, the large components, split into left
   and right by the patient's side (+x in LPS is the patient's left);
3. **bone**: > 250 HU inside the body, small specks removed;
4. **lung nodules**: soft tissue (> -300 HU) enclosed by a lung, 3-30 mm across;
5. **liver**: the largest 45-100 HU region (3×3×3 mean) on the patient's right,
   outside lungs and bone, holes filled;
6. **liver lesions**: soft-tissue regions (above -100 HU) inside the filled liver
   outline (two voxels in from its border and from the lungs), at least 25 HU darker
   than the liver, at least 5 mm across and compact (longest diameter at most twice
   that of a sphere of the same volume).

Measurements: volume (mm3), mean and standard deviation (HU) per label; volume,
longest diameter (mm) and centroid per nodule and lesion. Findings: "lung
nodule" and "liver lesion" present or absent.

Examples
--------
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=40, size=96, seed=0)
>>> result = ReferenceCTModel()(ph.hu, SeriesInfo(modality="CT"))
>>> sorted(result.segments.values())[:3]
['body', 'bone', 'liver']
>>> [f.value for f in result.findings]
['present', 'present']
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from radbridge.errors import ModelError
from radbridge.geometry import Volume
from radbridge.models.base import (
    AlgorithmInfo,
    Finding,
    ModelMeasurement,
    ModelResult,
    SeriesInfo,
)
from radbridge.models.reference_labels import REFERENCE_LABELS

__all__ = ["LABELS", "ReferenceCTModel"]

log = logging.getLogger(__name__)

#: Label value -> name of what the model finds: the reference anatomy.
LABELS: dict[int, str] = REFERENCE_LABELS
_HU_UNIT = "[hnsf'U]"
Mask = NDArray[np.bool_]


class ReferenceCTModel:
    """The classical CT model. Thresholds are keyword-only options.

    Parameters
    ----------
    min_lung_ml
        Smallest air component counted as lung.
    nodule_mm
        Smallest and largest nodule diameter.
    min_lesion_mm
        Smallest liver lesion diameter.
    """

    name = "radbridge-reference-ct"
    version = "1.0"
    manufacturer = "radbridge"

    def __init__(
        self,
        *,
        min_lung_ml: float = 50.0,
        nodule_mm: tuple[float, float] = (3.0, 30.0),
        min_lesion_mm: float = 5.0,
    ) -> None:
        self.min_lung_ml = min_lung_ml
        self.nodule_mm = nodule_mm
        self.min_lesion_mm = min_lesion_mm

    def __call__(self, volume: Volume, series: SeriesInfo) -> ModelResult:
        """Segment ``volume`` (Hounsfield units)."""
        if series.modality and series.modality != "CT":
            raise ModelError(
                f"the reference CT model needs CT, not {series.modality}",
                attribute="Modality",
                hint="route only CT series to this model",
            )
        started = time.perf_counter()
        hu = np.asarray(volume.array, dtype=np.float32)
        voxel_ml = float(np.prod(volume.spacing)) / 1000.0
        body = _body(hu)
        lungs = _lungs(hu, body, volume, voxel_ml, self.min_lung_ml)
        bone = _drop_small(body & (hu > 250), int(1.0 / voxel_ml) + 1)
        nodules = self._nodules(hu, lungs, volume)
        soft = body & ~bone & ~(lungs[0] | lungs[1])
        liver, smooth, box = _liver(hu, soft, volume)
        lesions = np.zeros(hu.shape, bool)
        if box is not None and liver.any():
            near_air = ndimage.binary_dilation((lungs[0] | lungs[1])[box], iterations=2)
            lesions[box] = self._lesions(smooth, liver[box], soft[box] & ~near_air, volume)
        labels = np.zeros(hu.shape, np.uint8)
        labels[body] = 1
        labels[lungs[0]] = 2
        labels[lungs[1]] = 3
        labels[bone] = 4
        labels[liver] = 5
        labels[nodules] = 6
        labels[lesions] = 7
        measurements = _measure(labels, hu, volume)
        findings = (
            Finding("lung nodule", "present" if nodules.any() else "absent", label=6),
            Finding("liver lesion", "present" if lesions.any() else "absent", label=7),
        )
        log.info(
            "reference CT model: %.2f s for %s voxels", time.perf_counter() - started, labels.size
        )
        return ModelResult(
            labels=volume.with_array(labels),
            segments=dict(LABELS),
            measurements=measurements,
            findings=findings,
            algorithm=AlgorithmInfo(self.name, self.version, manufacturer=self.manufacturer),
        )

    def _nodules(self, hu: NDArray[Any], lungs: tuple[Mask, Mask], volume: Volume) -> Mask:
        out = np.zeros(hu.shape, bool)
        low, high = self.nodule_mm
        for lung in lungs:
            box = _box(lung)
            if box is None:
                continue
            enclosed = np.zeros(hu.shape, bool)
            enclosed[box] = _fill_slices(lung[box]) & ~lung[box] & (hu[box] > -300)
            out |= _components_by_size(enclosed, volume, low, high)
        return out

    def _lesions(self, smooth: NDArray[Any], liver: Mask, allowed: Mask, volume: Volume) -> Mask:
        """Lesions inside the liver (all arrays cropped to the liver's box)."""
        # Stay two voxels inside the liver's outline: partial volume darkens its border.
        filled = ndimage.binary_erosion(_fill_slices(liver), iterations=2)
        reference = float(np.median(smooth[liver]))
        candidates = filled & allowed & (smooth > -100) & (smooth < reference - 25)
        sized = _components_by_size(candidates, volume, self.min_lesion_mm, 200.0)
        return _compact(sized, volume)


def _body(hu: NDArray[Any]) -> Mask:
    labelled, count = ndimage.label(hu > -500)
    if count == 0:
        raise ModelError(
            "no body found: no voxel above -500 HU",
            attribute="PixelData",
            hint="check that the series is CT in Hounsfield units (rescale)",
        )
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return _fill_slices(labelled == int(np.argmax(sizes)))


def _lungs(
    hu: NDArray[Any], body: Mask, volume: Volume, voxel_ml: float, min_ml: float
) -> tuple[Mask, Mask]:
    air = body & (hu < -400)
    labelled, count = ndimage.label(air)
    empty = np.zeros(hu.shape, bool)
    if count == 0:
        return empty, empty.copy()
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    keep = np.flatnonzero(sizes * voxel_ml >= min_ml)
    lung = np.isin(labelled, keep)
    x = _lps_x(volume)
    centre = float(x[np.nonzero(body.any(axis=(0, 1)))[0]].mean()) if body.any() else 0.0
    left_columns = x > centre
    left = lung & left_columns[None, None, :]
    right = lung & ~left_columns[None, None, :]
    return left, right


def _lps_x(volume: Volume) -> NDArray[np.float64]:
    """LPS x of each column (for axial-ish orientations the column axis carries x)."""
    columns = np.arange(volume.shape[2], dtype=np.float64)
    centre = np.array([volume.shape[0] / 2, volume.shape[1] / 2, 0.0])
    points = np.tile(centre, (volume.shape[2], 1))
    points[:, 2] = columns
    return volume.geometry.index_to_lps(points)[:, 0]


def _liver(
    hu: NDArray[Any], allowed: Mask, volume: Volume
) -> tuple[Mask, NDArray[np.float32], tuple[slice, slice, slice] | None]:
    """Find the liver; also return the smoothed HU of its box (for the lesions)."""
    out = np.zeros(hu.shape, bool)
    x = _lps_x(volume)
    # The patient's right, and the left lobe's reach across the midline.
    right = allowed & (x < float(x.mean()) + 80.0)[None, None, :]
    box = _box(right, pad=3)
    if box is None:
        return out, np.zeros((0, 0, 0), np.float32), None
    smooth = ndimage.uniform_filter(hu[box], size=3)
    candidates = ndimage.binary_opening(right[box] & (smooth > 45) & (smooth < 100))
    labelled, count = ndimage.label(candidates)
    if count == 0:
        return out, smooth, box
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    centres = ndimage.center_of_mass(candidates, labelled, range(1, count + 1))
    x_box = x[box[2]]
    for index in np.argsort(sizes)[::-1][:5]:
        if index == 0 or sizes[index] == 0:
            break
        if float(np.interp(centres[index - 1][2], np.arange(len(x_box)), x_box)) < float(x.mean()):
            out[box] = _fill_slices(labelled == index) & allowed[box]
            break
    return out, smooth, box


_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = [[0, 1, 0], [1, 1, 1], [0, 1, 0]]


def _box(mask: Mask, pad: int = 0) -> tuple[slice, slice, slice] | None:
    """Return the bounding box of ``mask`` grown by ``pad`` voxels (``None`` if empty)."""
    found = ndimage.find_objects(mask.astype(np.uint8))
    if not found or found[0] is None:
        return None
    return tuple(  # type: ignore[return-value]
        slice(max(s.start - pad, 0), min(s.stop + pad, n))
        for s, n in zip(found[0], mask.shape, strict=True)
    )


def _fill_slices(mask: Mask) -> Mask:
    """Fill holes slice by slice: background not connected (in plane) to the box edge."""
    out = mask.copy()
    box = _box(mask, pad=1)
    if box is None:
        return out
    sub = mask[box]
    background, _ = ndimage.label(~sub, structure=_IN_PLANE)
    edge = np.concatenate(
        [
            background[:, 0, :].ravel(),
            background[:, -1, :].ravel(),
            background[:, :, 0].ravel(),
            background[:, :, -1].ravel(),
        ]
    )
    outside = np.zeros(int(background.max()) + 1, bool)
    outside[np.unique(edge)] = True
    out[box] = sub | ~outside[background]
    return out


def _drop_small(mask: Mask, min_voxels: int) -> Mask:
    labelled, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labelled.ravel())
    keep = sizes >= min_voxels
    keep[0] = False
    kept: Mask = keep[labelled]
    return kept


def _components_by_size(mask: Mask, volume: Volume, low_mm: float, high_mm: float) -> Mask:
    """Keep components whose equivalent sphere diameter lies in [low_mm, high_mm]."""
    out = np.zeros(mask.shape, bool)
    box = _box(mask)
    if box is None:
        return out
    labelled, _ = ndimage.label(mask[box])
    voxel = float(np.prod(volume.spacing))
    sizes = np.bincount(labelled.ravel()).astype(np.float64) * voxel
    diameters = np.cbrt(6.0 * sizes / np.pi)
    keep = (diameters >= low_mm) & (diameters <= high_mm)
    keep[0] = False
    out[box] = keep[labelled]
    return out


def _compact(mask: Mask, volume: Volume, ratio: float = 2.0) -> Mask:
    """Keep components no longer than ``ratio`` times their equivalent-sphere diameter."""
    labelled, count = ndimage.label(mask)
    if count == 0:
        return mask
    voxel = float(np.prod(volume.spacing))
    keep = np.zeros(count + 1, bool)
    for index, box in enumerate(ndimage.find_objects(labelled), start=1):
        if box is None:
            continue
        local = np.argwhere(labelled[box] == index) + [s.start for s in box]
        equivalent = float(np.cbrt(6.0 * len(local) * voxel / np.pi))
        longest = _diameter(volume.geometry.index_to_lps(local), volume)
        keep[index] = longest <= ratio * equivalent
    compact: Mask = keep[labelled]
    return compact


def _measure(
    labels: NDArray[np.uint8], hu: NDArray[Any], volume: Volume
) -> tuple[ModelMeasurement, ...]:
    voxel = float(np.prod(volume.spacing))
    out: list[ModelMeasurement] = []
    boxes = ndimage.find_objects(labels, max_label=len(LABELS))
    for label, box in enumerate(boxes, start=1):
        if box is None:
            continue
        values = hu[box][labels[box] == label].astype(np.float64)
        out.append(ModelMeasurement("volume", values.size * voxel, "mm3", label=label))
        out.append(ModelMeasurement("mean", float(values.mean()), _HU_UNIT, label=label))
        out.append(
            ModelMeasurement("standard deviation", float(values.std()), _HU_UNIT, label=label)
        )
    for label in (6, 7):
        out.extend(_objects(labels == label, label, volume))
    return tuple(out)


def _objects(mask: Mask, label: int, volume: Volume) -> list[ModelMeasurement]:
    labelled, _ = ndimage.label(mask)
    out: list[ModelMeasurement] = []
    voxel = float(np.prod(volume.spacing))
    for index, box in enumerate(ndimage.find_objects(labelled), start=1):
        if box is None:
            continue
        local = np.argwhere(labelled[box] == index) + [s.start for s in box]
        points = volume.geometry.index_to_lps(local)
        mean = points.mean(axis=0)
        centroid = (float(mean[0]), float(mean[1]), float(mean[2]))
        out.append(
            ModelMeasurement(
                "volume",
                len(local) * voxel,
                "mm3",
                label=label,
                instance=index,
                centroid_lps=centroid,
            )
        )
        out.append(
            ModelMeasurement(
                "long axis",
                _diameter(points, volume),
                "mm",
                label=label,
                instance=index,
                centroid_lps=centroid,
            )
        )
    return out


def _diameter(points: NDArray[np.float64], volume: Volume) -> float:
    """Longest distance across an object, edge to edge (centre distance + one voxel)."""
    from scipy.spatial import ConvexHull, QhullError
    from scipy.spatial.distance import pdist

    candidates = points
    if len(points) > 1500:
        try:
            candidates = points[ConvexHull(points).vertices]
        except QhullError:  # flat object: keep every point
            candidates = points[:: max(1, len(points) // 1500)]
    longest = float(pdist(candidates).max()) if len(candidates) > 1 else 0.0
    return longest + float(np.mean(volume.spacing[1:]))
