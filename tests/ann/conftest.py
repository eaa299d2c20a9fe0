"""Fixtures for annotation tests: a small synthetic slide, groups of every graphic type."""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.ann import Annotation, AnnotationGroupDescription, MeasurementDescription
from radbridge.coding import sct, ucum
from radbridge.io.slide_phantom import write_slide_phantom
from radbridge.seg import AlgorithmIdentification

AREA = MeasurementDescription(sct("42798000", "Area"), ucum("um2", "square micrometer"))
PERIMETER = MeasurementDescription(sct("131191004", "Perimeter"), ucum("um", "micrometer"))
CELL = dict(category=sct("91723000", "Anatomical structure"), property_type=sct("4421005", "Cell"))


@pytest.fixture(scope="package")
def slide_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slide")
    write_slide_phantom(folder, size=(400, 600), tile=128, levels=2)
    return folder


def groups(rng: np.random.Generator, count: int = 50):
    """One group per graphic type with random shapes; returns (description, items)."""
    algorithm = AlgorithmIdentification("cell-finder", "2.0")

    def polygon():
        n = int(rng.integers(3, 9))
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        centre, radius = rng.uniform(10, 390, 2), rng.uniform(2, 9)
        return np.column_stack([np.cos(angles), np.sin(angles)]) * radius + centre

    def box(kind):
        c, a, b = rng.uniform(20, 380, 2), rng.uniform(1, 10), rng.uniform(1, 10)
        if kind == "ellipse":  # ends of the major axis, then of the minor axis
            return np.array(
                [[c[0] - a, c[1]], [c[0] + a, c[1]], [c[0], c[1] - b], [c[0], c[1] + b]]
            )
        return np.array([[c[0], c[1]], [c[0] + a, c[1]], [c[0] + a, c[1] + b], [c[0], c[1] + b]])

    made = {
        "polygon": [
            Annotation(polygon(), (rng.uniform(1, 100), rng.uniform())) for _ in range(count)
        ],
        "point": [
            Annotation(rng.uniform(0, 400, (1, 2)), (rng.uniform(1, 100),)) for _ in range(count)
        ],
        "ellipse": [
            Annotation(box("ellipse"), (float(k) if k % 3 else np.nan,)) for k in range(count)
        ],
        "rectangle": [box("rectangle") for _ in range(count)],
        "polyline": [rng.uniform(0, 400, (int(rng.integers(2, 6)), 2)) for _ in range(count)],
    }
    measurements = {"polygon": (AREA, PERIMETER), "point": (AREA,), "ellipse": (AREA,)}
    out = []
    for number, (kind, items) in enumerate(made.items(), start=1):
        description = AnnotationGroupDescription(
            number,
            f"{kind} cells",
            **CELL,
            graphic_type=kind,
            algorithm_type="automatic" if number % 2 else "manual",
            algorithm=algorithm if number % 2 else None,
            measurements=measurements.get(kind, ()),
        )
        out.append((description, items))
    return out
