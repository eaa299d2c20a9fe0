"""Benchmark data: the phantom CT (200 x 512 x 512) and label maps with many organs.

Usage: python bench/seg_data.py OUT [--slices 200] [--size 512]
Writes OUT/dicom/ (the CT series), OUT/labels_{10,100}.npy, .nrrd, dcmqi's meta JSON
(meta_N.json) and radbridge's labels JSON (labels_N.json) with the same codes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from radbridge.geometry import Volume
from radbridge.io.nifti import write_image
from radbridge.io.phantom import generate_phantom, write_phantom

ANATOMY = {
    "CodeValue": "123037004",
    "CodingSchemeDesignator": "SCT",
    "CodeMeaning": "Anatomical Structure",
}
ORGAN = {"CodeValue": "10200004", "CodingSchemeDesignator": "SCT", "CodeMeaning": "Liver"}


def organ_labels(
    labels: np.ndarray, spacing: tuple[float, float, float], count: int, seed: int = 0
) -> np.ndarray:
    """Paint ``count`` ellipsoidal organs (8-35 mm radii) inside the body."""
    rng = np.random.default_rng(seed)
    body = np.argwhere(labels > 0)
    out = np.zeros(labels.shape, np.uint8 if count < 256 else np.uint16)
    zz, yy, xx = (np.arange(n) for n in labels.shape)
    for label in range(1, count + 1):
        centre = body[rng.integers(len(body))]
        radii_mm = rng.uniform(8, 35, size=3)
        radii = radii_mm / np.asarray(spacing)
        lo = np.maximum(centre - np.ceil(radii).astype(int), 0)
        hi = np.minimum(centre + np.ceil(radii).astype(int) + 1, labels.shape)
        z = ((zz[lo[0] : hi[0]] - centre[0]) / radii[0])[:, None, None] ** 2
        y = ((yy[lo[1] : hi[1]] - centre[1]) / radii[1])[None, :, None] ** 2
        x = ((xx[lo[2] : hi[2]] - centre[2]) / radii[2])[None, None, :] ** 2
        inside = (z + y + x) <= 1.0
        inside &= labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] > 0
        region = out[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        region[inside] = label
        if not (out == label).any():  # fully overpainted or outside: put one voxel back
            out[tuple(centre)] = label
    return out


def dcmqi_meta(count: int) -> dict[str, object]:
    return {
        "ContentCreatorName": "bench",
        "ClinicalTrialSeriesID": "1",
        "ClinicalTrialTimePointID": "1",
        "SeriesDescription": "bench",
        "SeriesNumber": "300",
        "InstanceNumber": "1",
        "BodyPartExamined": "",
        "segmentAttributes": [
            [
                {
                    "labelID": k,
                    "SegmentLabel": f"organ {k}",
                    "SegmentDescription": "",
                    "SegmentAlgorithmType": "AUTOMATIC",
                    "SegmentAlgorithmName": "bench",
                    "SegmentedPropertyCategoryCodeSequence": ANATOMY,
                    "SegmentedPropertyTypeCodeSequence": ORGAN,
                    "recommendedDisplayRGBValue": [128, 174, 128],
                }
                for k in range(1, count + 1)
            ]
        ],
        "ContentLabel": "SEGMENTATION",
        "ContentDescription": "bench",
    }


def radbridge_labels(count: int) -> dict[str, object]:
    """``radbridge seg encode --labels``: the same labels and codes as dcmqi_meta."""

    def code(entry: dict[str, str]) -> dict[str, str]:
        return {
            "value": entry["CodeValue"],
            "scheme": entry["CodingSchemeDesignator"],
            "meaning": entry["CodeMeaning"],
        }

    return {
        str(k): {"label": f"organ {k}", "category": code(ANATOMY), "type": code(ORGAN)}
        for k in range(1, count + 1)
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--slices", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    files = write_phantom(args.out, slices=args.slices, size=args.size, seed=0, nifti=False)
    ph = generate_phantom(slices=args.slices, size=args.size, seed=0)
    many = organ_labels(ph.labels.array, ph.labels.spacing, 100)
    for count in (10, 100):
        labels = np.where(many <= count, many, 0).astype(many.dtype)
        np.save(args.out / f"labels_{count}.npy", labels)
        write_image(Volume(labels, ph.labels.affine), args.out / f"labels_{count}.nrrd")
        (args.out / f"meta_{count}.json").write_text(json.dumps(dcmqi_meta(count), indent=1))
        (args.out / f"labels_{count}.json").write_text(json.dumps(radbridge_labels(count)))
    print(files.dicom_dir)


if __name__ == "__main__":
    main()
