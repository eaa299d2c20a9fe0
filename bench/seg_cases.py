"""One SEG benchmark case per process: prints a JSON line with time and peak memory.

Usage: python bench/seg_cases.py CASE DATA_DIR COUNT OUT
Timed: creating the SEG and writing it (create cases), or reading a file into a label
volume (read cases, OUT is the file to read). Loading the inputs is not timed.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom

JPEGLS = "1.2.840.10008.1.2.4.80"


def sources(data: Path) -> list[pydicom.Dataset]:
    return [
        pydicom.dcmread(p, stop_before_pixels=True) for p in sorted((data / "dicom").glob("*.dcm"))
    ]


def radbridge_create(data: Path, count: int, out: Path, seg_type: str, syntax: str) -> None:
    from radbridge.coding import sct
    from radbridge.iods.seg import AlgorithmIdentification, SegmentDescription, encode_segmentation
    from radbridge.iods.source import SourceSeries

    labels = np.load(data / f"labels_{count}.npy")
    src = SourceSeries.from_datasets(sources(data))
    algo = AlgorithmIdentification("bench", "1")
    descs = [
        SegmentDescription(
            k,
            f"organ {k}",
            category=sct("123037004", "Anatomical Structure"),
            property_type=sct("10200004", "Liver"),
            algorithm=algo,
        )
        for k in range(1, count + 1)
    ]
    start = time.perf_counter()
    ds = encode_segmentation(labels, src, descs, segmentation_type=seg_type, transfer_syntax=syntax)
    ds.save_as(out, enforce_file_format=True)
    report(start, out)


def highdicom_create(data: Path, count: int, out: Path, seg_type: str, syntax: str) -> None:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    labels = np.load(data / f"labels_{count}.npy")
    srcs = sources(data)
    # highdicom sorts nothing: give the sources in our slice order (ascending z).
    srcs.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    algo = hd.AlgorithmIdentificationSequence("bench", codes.cid7162.ArtificialIntelligence, "1")
    descs = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=f"organ {k}",
            segmented_property_category=codes.SCT.AnatomicalStructure,
            segmented_property_type=codes.SCT.Liver,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
        )
        for k in range(1, count + 1)
    ]
    start = time.perf_counter()
    seg = hd.seg.Segmentation(
        source_images=srcs,
        pixel_array=labels,
        segmentation_type=getattr(hd.seg.SegmentationTypeValues, seg_type.upper()),
        segment_descriptions=descs,
        series_instance_uid=hd.UID(),
        series_number=300,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="bench",
        manufacturer_model_name="bench",
        software_versions="1",
        device_serial_number="1",
        transfer_syntax_uid=JPEGLS if syntax == "jpegls" else pydicom.uid.ExplicitVRLittleEndian,
    )
    seg.save_as(out)
    report(start, out)


def dcmqi_create(data: Path, count: int, out: Path) -> None:
    exe = Path(sys.executable).parent / "itkimage2segimage"
    start = time.perf_counter()
    subprocess.run(
        [
            exe,
            "--inputImageList",
            data / f"labels_{count}.nrrd",
            "--inputDICOMDirectory",
            data / "dicom",
            "--inputMetadata",
            data / f"meta_{count}.json",
            "--outputDICOM",
            out,
            "--skip",
        ],
        check=True,
        capture_output=True,
    )
    report(start, out, children=True)


def floor_create(data: Path, count: int, out: Path) -> None:
    """The NumPy floor: find non-empty (slice, segment) frames, build, pack, write them.

    Per-slice bincount finds the frames; each is the slice compared with its label.
    No DICOM at all: the least NumPy work that yields the same pixel bytes.
    """
    labels = np.load(data / f"labels_{count}.npy")
    start = time.perf_counter()
    pairs = [
        (int(k), s)
        for s in range(labels.shape[0])
        for k in np.flatnonzero(np.bincount(labels[s].ravel(), minlength=count + 1)[1:]) + 1
    ]
    pairs.sort()
    with out.open("wb") as handle:
        for first in range(0, len(pairs), 64):
            chunk = pairs[first : first + 64]
            frames = np.stack([labels[s] == k for k, s in chunk])
            handle.write(np.packbits(frames.reshape(-1), bitorder="little").tobytes())
    report(start, out)


def radbridge_read(path: Path) -> None:
    from radbridge.iods.seg import read_segmentation

    start = time.perf_counter()
    volume = read_segmentation(path).label_volume()
    report(start, path, voxels=int(np.count_nonzero(volume.array)))


def highdicom_read(path: Path) -> None:
    import highdicom as hd

    start = time.perf_counter()
    volume = hd.seg.segread(path).get_volume(combine_segments=True)
    report(start, path, voxels=int(np.count_nonzero(volume.array)))


def dcmqi_read(path: Path, out_dir: Path) -> None:
    exe = Path(sys.executable).parent / "segimage2itkimage"
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run(
        [exe, "--inputDICOM", path, "--outputDirectory", out_dir, "-t", "nrrd", "--mergeSegments"],
        check=True,
        capture_output=True,
    )
    report(start, path, children=True)


def floor_read(path: Path) -> None:
    start = time.perf_counter()
    ds = pydicom.dcmread(path)
    frames = np.unpackbits(np.frombuffer(ds.PixelData, np.uint8), bitorder="little")
    report(start, path, voxels=int(frames.sum()))


def report(start: float, path: Path, *, children: bool = False, **extra: object) -> None:
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": round(seconds, 3),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "bytes": path.stat().st_size,
                **extra,
            }
        )
    )


def main() -> None:
    case, data, count, out = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    tool, action, *rest = case.split(":")
    if action == "create":
        seg_type, syntax = rest if rest else ("binary", "explicit")
        if tool == "radbridge":
            radbridge_create(data, count, out, seg_type, syntax)
        elif tool == "highdicom":
            highdicom_create(data, count, out, seg_type, syntax)
        elif tool == "dcmqi":
            dcmqi_create(data, count, out)
        elif tool == "floor":
            floor_create(data, count, out)
        else:
            raise SystemExit(f"unknown tool {tool}")
    else:
        {"radbridge": radbridge_read, "highdicom": highdicom_read, "floor": floor_read}.get(
            tool, lambda p: dcmqi_read(p, out.parent / "dcmqi-out")
        )(out)


if __name__ == "__main__":
    main()
