"""A classical reference slide model (no weights): tissue on brightfield glass.

It exists so the gateway has a real slide model to run anywhere. On one level of
the slide — the finest with at most ``max_pixels`` pixels, read whole — tissue is
every pixel whose mean over R, G and B is darker than ``threshold`` (glass is
white); connected regions (8-connected) smaller than ``min_pixels`` are dropped.
It returns, on that level:

- ``slide_labels``: 1 where there is tissue (segment 1, SCT 85756007 "Tissue");
- one POINT annotation per tissue region at its centroid (column, row of the
  level's Total Pixel Matrix) with its area in µm² (group "Tissue regions");
- the measurement "area" of all tissue (mm², label 1).

It is not a diagnostic tool, and it refuses monochrome (fluorescence) slides.

Examples
--------
>>> from radbridge.wsi import read_slide
>>> slide = read_slide("../shared/interop/images/highdicom/sm_image.dcm")
>>> result = ReferenceSlideModel().run_slide(slide, SeriesInfo(modality="SM"))
>>> result.level, result.slide_labels.shape, result.segments[1]["label"]
(0, (50, 50), 'Tissue')
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from radbridge.coding import sct, ucum
from radbridge.errors import ModelError
from radbridge.models.base import (
    AlgorithmInfo,
    ModelAnnotations,
    ModelMeasurement,
    ModelResult,
    SeriesInfo,
)

__all__ = ["AREA", "TISSUE_SEGMENT", "ReferenceSlideModel"]

log = logging.getLogger(__name__)

#: Segment 1 as :func:`radbridge.seg.describe_labels` takes it (explicit codes).
TISSUE_SEGMENT: dict[str, Any] = {
    "label": "Tissue",
    "category": {"value": "91723000", "scheme": "SCT", "meaning": "Anatomical Structure"},
    "type": {"value": "85756007", "scheme": "SCT", "meaning": "Tissue"},
    "rgb": [214, 120, 180],
}
#: The measurement each region annotation carries.
AREA = (sct("42798000", "Area"), ucum("um2", "square micrometer"))


class ReferenceSlideModel:
    """The classical tissue detector. Thresholds are keyword-only options.

    Parameters
    ----------
    threshold
        Pixels with a mean of R, G, B below it are tissue (0..255).
    min_pixels
        Smallest tissue region kept, in pixels of the level used.
    max_pixels
        The model works on the finest level with at most this many pixels (else
        the coarsest).
    """

    name = "radbridge-reference-slide"
    version = "1.0"
    manufacturer = "radbridge"

    def __init__(
        self, *, threshold: float = 220.0, min_pixels: int = 16, max_pixels: int = 4_000_000
    ) -> None:
        self.threshold = threshold
        self.min_pixels = min_pixels
        self.max_pixels = max_pixels

    def _level(self, slide: Any) -> int:
        for level in slide.levels:
            rows, columns = level.shape
            if rows * columns <= self.max_pixels:
                return int(level.index)
        return len(slide.levels) - 1

    def run_slide(self, slide: Any, series: SeriesInfo) -> ModelResult:
        """Find the tissue on ``slide`` (a :class:`radbridge.wsi.Slide`)."""
        started = time.perf_counter()
        index = self._level(slide)
        level = slide.level(index)
        if level.samples_per_pixel != 3:
            raise ModelError(
                f"the reference slide model needs a colour (brightfield) slide; level {index} "
                f"has {level.samples_per_pixel} sample(s) per pixel",
                attribute="SamplesPerPixel",
                hint="route only brightfield slides to this model",
            )
        pixels = level.read()
        tissue = pixels.mean(axis=-1) < self.threshold
        regions, count = ndimage.label(tissue, structure=np.ones((3, 3), bool))
        sizes = np.bincount(regions.ravel(), minlength=count + 1)
        kept = [k for k in range(1, count + 1) if sizes[k] >= self.min_pixels]
        labels = np.isin(regions, kept).astype(np.uint8)
        pixel_um2 = float(np.prod(level.pixel_spacing)) * 1e6  # mm² -> µm²
        annotations = _annotations(regions, kept, sizes, pixel_um2)
        log.info(
            "reference slide model: %d tissue regions on level %d in %.2f s",
            len(kept),
            index,
            time.perf_counter() - started,
        )
        return ModelResult(
            level=index,
            slide_labels=labels,
            segments={1: TISSUE_SEGMENT},
            annotations=annotations,
            measurements=(
                ModelMeasurement("area", float(labels.sum()) * pixel_um2 / 1e6, "mm2", label=1),
            ),
            algorithm=AlgorithmInfo(self.name, self.version, manufacturer=self.manufacturer),
        )


def _annotations(
    regions: NDArray[Any], kept: list[int], sizes: NDArray[Any], pixel_um2: float
) -> tuple[ModelAnnotations, ...]:
    """One POINT per kept region at its centroid (column, row), with its area in µm².

    Annotation coordinates put (0, 0) at the top left corner of the matrix, so the
    centre of pixel (row r, column c) is (c + 0.5, r + 0.5).
    """
    if not kept:
        return ()
    centres = ndimage.center_of_mass(regions > 0, regions, kept)
    points = [
        (np.array([[column + 0.5, row + 0.5]], np.float64), (float(sizes[k]) * pixel_um2,))
        for k, (row, column) in zip(kept, centres, strict=True)
    ]
    group = ModelAnnotations(
        "Tissue regions",
        points,
        category=sct("91723000", "Anatomical Structure"),
        property_type=sct("85756007", "Tissue"),
        graphic_type="point",
        measurements=(AREA,),
    )
    return (group,)
