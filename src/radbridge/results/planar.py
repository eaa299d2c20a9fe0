"""Image-plane long axes of the result's lesions: TID 1410 groups a viewer draws.

For every object the model measured one by one (``ModelMeasurement(...,
instance=k)``: a nodule, a lesion) the ``sr`` output adds a planar measurement
group (TID 1410) on the object's *key slice* — the slice where its cross-section
is largest:

- the Image Region is the object's outline on that slice (a closed POLYLINE
  SCOORD on the source image);
- one NUM "Long axis" (SCT 103339001, mm): the longest distance between two
  pixel centres of the cross-section, with the line it was measured on as its
  INFERRED FROM POLYLINE SCOORD (two points, image coordinates).

That is the structure OHIF writes for its Length tool, and the Tracking
Identifier starts with the Cornerstone3D tool name
(``Cornerstone3DTools@^0.1.0:Length:``, then the segment and object) so that
OHIF's SR hydration (dcmjs's Cornerstone3D measurement-report adapter) turns the
group into a Length annotation on the key image.

Objects are matched to the model's instance numbers by their centroids
(``centroid_lps``) when the model gives them, else in the order of
:func:`scipy.ndimage.label`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from radbridge.coding import Code, sct
from radbridge.geometry import Volume
from radbridge.iods.contours import find_contours, signed_area, simplify
from radbridge.iods.source import Series
from radbridge.models import ModelMeasurement
from radbridge.sr import AlgorithmIdentification, ImageRegion, Measurement, MeasurementGroup

__all__ = ["LONG_AXIS", "TOOL_PREFIX", "long_axis_groups"]

#: SCT 103339001 "Long axis".
LONG_AXIS = sct("103339001", "Long axis")
#: What OHIF's SR hydration (dcmjs) recognises as a Length annotation.
TOOL_PREFIX = "Cornerstone3DTools@^0.1.0:Length"
_MM = Code("mm", "UCUM", "mm")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Axis:
    slice_index: int
    outline: tuple[float, ...]
    line: tuple[float, ...]
    length_mm: float


def _objects(
    mask: NDArray[np.bool_], volume: Volume, wanted: dict[int, ModelMeasurement]
) -> Iterator[tuple[int, NDArray[np.bool_]]]:
    """Yield (instance, object mask) for each instance the model measured."""
    labelled, count = ndimage.label(mask)
    if count == 0:
        return
    indices = range(1, count + 1)
    centres = np.asarray(ndimage.center_of_mass(mask, labelled, list(indices)), dtype=float)
    centres_lps = volume.geometry.index_to_lps(centres)
    free = set(indices)
    for instance, measurement in sorted(wanted.items()):
        if measurement.centroid_lps is not None:
            distance = np.linalg.norm(centres_lps - np.asarray(measurement.centroid_lps), axis=1)
            choice = next((k + 1 for k in np.argsort(distance) if k + 1 in free), None)
        else:
            choice = instance if instance in free else None
        if choice is None:
            continue
        free.discard(choice)
        yield instance, labelled == choice


def _axis(obj: NDArray[np.bool_], spacing: tuple[float, float]) -> _Axis | None:
    """Return the object's long axis on its key slice, in image coordinates (column, row)."""
    areas = obj.reshape(obj.shape[0], -1).sum(axis=1)
    index = int(np.argmax(areas))
    plane = obj[index]
    rows, columns = np.nonzero(plane)
    points = np.stack([rows * spacing[0], columns * spacing[1]], axis=1)
    if len(points) > 64:  # the longest chord joins two pixels of the outline
        edge = plane & ~ndimage.binary_erosion(plane)
        rows, columns = np.nonzero(edge)
        points = np.stack([rows * spacing[0], columns * spacing[1]], axis=1)
    distances = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
    a, b = np.unravel_index(int(np.argmax(distances)), distances.shape)
    length = float(distances[a, b])
    if length <= 0:
        return None  # a one-pixel cross-section has no axis
    polygons = find_contours(plane)
    outer = max(polygons, key=signed_area)
    closed = simplify(outer, 0.25)
    outline = [(float(c) + 0.5, float(r) + 0.5) for r, c in closed]
    outline.append(outline[0])  # a closed POLYLINE repeats its first point
    line = (
        float(columns[a]) + 0.5,
        float(rows[a]) + 0.5,
        float(columns[b]) + 0.5,
        float(rows[b]) + 0.5,
    )
    return _Axis(index, tuple(v for p in outline for v in p), line, round(length, 3))


def long_axis_groups(
    series: Series,
    labels: Volume,
    measurements: tuple[ModelMeasurement, ...],
    base: dict[int, MeasurementGroup],
    algorithm: AlgorithmIdentification,
) -> list[MeasurementGroup]:
    """Return one TID 1410 long-axis group per object the model measured one by one.

    ``base`` maps a segment number to its volumetric group (finding, site and
    tracking identifier are taken from it). A label map off the source's grid
    (resampled, shifted) gives none: its pixels are not the images' pixels (logged).
    """
    refs = series.slice_refs
    if not refs or len(refs) != labels.shape[0]:
        return []
    if not labels.geometry.is_close(series.geometry, atol=1e-3):
        log.warning("the label map lies off the source's grid: no long axes drawn on the images")
        return []
    spacing = (labels.spacing[1], labels.spacing[2])
    array = np.asarray(labels.array)
    groups = []
    for label, group in sorted(base.items()):
        wanted = {
            m.instance: m for m in measurements if m.label == label and m.instance is not None
        }
        if not wanted:
            continue
        for instance, obj in _objects(array == label, labels, wanted):
            axis = _axis(obj, spacing)
            if axis is None:
                continue
            ref = refs[axis.slice_index]
            on_image = partial(
                ImageRegion,
                "POLYLINE",
                sop_class_uid=ref.sop_class_uid,
                sop_instance_uid=ref.sop_instance_uid,
                frame_number=ref.frame_number or None,
            )
            groups.append(
                MeasurementGroup(
                    f"{TOOL_PREFIX}:{group.tracking_id} {instance}",
                    finding=group.finding,
                    finding_category=group.finding_category,
                    finding_site=group.finding_site,
                    laterality=group.laterality,
                    region=on_image(axis.outline),
                    measurements=(
                        Measurement(
                            LONG_AXIS,
                            axis.length_mm,
                            _MM,
                            algorithm=algorithm,
                            region=on_image(axis.line),
                        ),
                    ),
                )
            )
    return groups
