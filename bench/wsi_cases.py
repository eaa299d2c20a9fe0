"""One slide-microscopy benchmark case per process: prints a JSON line (time, memory).

Usage: python bench/wsi_cases.py CASE DATA_DIR OUT
Cases: prepare (not timed: the blank slide and the mask), rb-seg-write, rb-seg-write-sparse,
rb-seg-read, hd-seg-write, hd-seg-read, rb-ann-write, rb-ann-read, hd-ann-write, hd-ann-read.

Memory: ``peak_anon_mb`` is the highest anonymous resident memory (RssAnon, sampled
every 20 ms): what the process itself allocated. ``peak_rss_mb`` (ru_maxrss) also
counts pages of memory-mapped files (the mask, the SEG), which the kernel can drop.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

#: Level size, tile size, foreground share, annotation count (env overrides for a smoke run).
SIZE = int(os.environ.get("BENCH_WSI_SIZE", "50000"))
TILE = 256
FOREGROUND = 0.10
ANNOTATIONS = int(os.environ.get("BENCH_WSI_ANNOTATIONS", "1000000"))


class Peak:
    """Sample RssAnon in a thread; ``peak`` in MB."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @staticmethod
    def anon() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.anon())
            time.sleep(0.02)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(max(self.peak, self.anon()), 1)


def report(start: float, peak: Peak, baseline: float, **extra: object) -> None:
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "peak_anon_mb": peak.stop(),
                "baseline_anon_mb": round(baseline, 1),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                **extra,
            }
        )
    )


def discs() -> list[tuple[float, float, float]]:
    """Ten discs covering FOREGROUND of the matrix, inside it, not overlapping."""
    radius = (FOREGROUND * SIZE * SIZE / 10 / np.pi) ** 0.5
    step = SIZE / 5
    return [(step * (k // 2 + 0.5), SIZE * (0.25 + 0.5 * (k % 2)), radius) for k in range(10)]


def mask_rows(top: int, bottom: int) -> np.ndarray:
    y, x = np.ogrid[top:bottom, 0:SIZE]
    out = np.zeros((bottom - top, SIZE), np.uint8)
    for cy, cx, r in discs():
        if cy + r < top or cy - r >= bottom:
            continue
        out[(y - cy) ** 2 + (x - cx) ** 2 < r * r] = 1
    return out


def prepare(data: Path) -> None:
    from radbridge.io.slide_phantom import write_slide_phantom

    data.mkdir(parents=True, exist_ok=True)
    write_slide_phantom(data / "slide", size=(SIZE, SIZE), tile=TILE, levels=1, blank=True)
    mask = np.lib.format.open_memmap(data / "mask.npy", "w+", np.uint8, (SIZE, SIZE))
    count = 0
    for top in range(0, SIZE, 1024):
        rows = mask_rows(top, min(top + 1024, SIZE))
        mask[top : top + len(rows)] = rows
        count += int(rows.sum())
    mask.flush()
    print(json.dumps({"foreground": round(count / SIZE / SIZE, 4)}))


def segment_descriptions():
    from radbridge.coding import sct
    from radbridge.seg import SegmentDescription

    return [
        SegmentDescription(
            1,
            "Tumour",
            category=sct("49755003", "Morphologically Abnormal Structure"),
            property_type=sct("108369006", "Neoplasm"),
            algorithm_type="MANUAL",
        )
    ]


def rb_seg_write(data: Path, out: Path, sparse: bool) -> None:
    from radbridge.wsi import encode_slide_segmentation, read_slide

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    slide = read_slide(data / "slide")
    mask = np.load(data / "mask.npy", mmap_mode="r")
    ds = encode_slide_segmentation(mask, slide, segment_descriptions(), omit_empty_tiles=sparse)
    ds.save_as(out, enforce_file_format=True)
    report(start, peak, baseline, bytes=out.stat().st_size, frames=int(ds.NumberOfFrames))


def _same_as_mask(data: Path, read: np.ndarray) -> bool:
    mask = np.load(data / "mask.npy", mmap_mode="r")
    return all(
        np.array_equal(read[top : top + 2048], mask[top : top + 2048])
        for top in range(0, SIZE, 2048)
    )


def rb_seg_read(data: Path, seg: Path) -> None:
    from radbridge.wsi import read_slide_segmentation

    target = data / "rb-read.npy"
    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    out = np.lib.format.open_memmap(target, "w+", np.uint8, (SIZE, SIZE))
    read_slide_segmentation(seg).mask(out=out)
    out.flush()
    report(start, peak, baseline, exact=_same_as_mask(data, out))
    target.unlink()


def rb_seg_read_memory(data: Path, seg: Path) -> None:
    """As highdicom does: the whole level's mask in memory."""
    from radbridge.wsi import read_slide_segmentation

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    mask = read_slide_segmentation(seg).mask()
    report(start, peak, baseline, exact=_same_as_mask(data, mask))


def hd_seg_write(data: Path, out: Path) -> None:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    source = pydicom.dcmread(data / "slide" / "level0.dcm")
    mask = np.load(data / "mask.npy", mmap_mode="r")
    description = hd.seg.SegmentDescription(
        1,
        "Tumour",
        codes.SCT.MorphologicallyAbnormalStructure,
        codes.SCT.Neoplasm,
        hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = hd.seg.Segmentation(
        [source],
        mask[None],
        "BINARY",
        [description],
        hd.UID(),
        300,
        hd.UID(),
        1,
        "bench",
        "bench",
        "1",
        "1",
        tile_pixel_array=True,
        omit_empty_frames=False,
        dimension_organization_type="TILED_FULL",
    )
    seg.save_as(out)
    report(start, peak, baseline, bytes=out.stat().st_size, frames=int(seg.NumberOfFrames))


def hd_seg_read(data: Path, seg: Path) -> None:
    import highdicom as hd

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    matrix = hd.seg.segread(seg).get_total_pixel_matrix(combine_segments=True)
    report(start, peak, baseline, exact=_same_as_mask(data, matrix))


def hexagons(count: int):
    from radbridge.ann import Annotation

    base = np.array([[0, 0], [4, 0], [6, 3], [4, 6], [0, 6], [-2, 3.0]])
    rng = np.random.default_rng(0)
    offsets = rng.uniform(10, SIZE - 10, (count, 2))
    for k in range(count):
        yield Annotation(base + offsets[k], (float(k % 1000),))


def annotation_group():
    from radbridge.ann import AnnotationGroupDescription, MeasurementDescription
    from radbridge.coding import sct, ucum

    area = MeasurementDescription(sct("42798000", "Area"), ucum("um2", "square micrometer"))
    return AnnotationGroupDescription(
        1,
        "Nuclei",
        category=sct("91723000", "Anatomical structure"),
        property_type=sct("84640000", "Nucleus"),
        graphic_type="polygon",
        algorithm_type="manual",
        measurements=(area,),
    )


def rb_ann_write(data: Path, out: Path) -> None:
    from radbridge.ann import write_annotations
    from radbridge.wsi import read_slide

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    slide = read_slide(data / "slide")
    write_annotations(out, slide, [(annotation_group(), hexagons(ANNOTATIONS))])
    report(start, peak, baseline, bytes=out.stat().st_size)


def rb_ann_read(data: Path, path: Path) -> None:
    from radbridge.ann import read_annotations

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    group = read_annotations(path).groups[0]
    total = 0.0
    for points in group:  # every annotation visited
        total += float(points[0, 0])
    values = group.measurement(0)
    report(
        start,
        peak,
        baseline,
        annotations=len(group),
        checksum=round(total + float(values.sum()), 1),
    )


def hd_ann_write(data: Path, out: Path) -> None:
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    source = pydicom.dcmread(data / "slide" / "level0.dcm", stop_before_pixels=True)
    items = list(hexagons(ANNOTATIONS))
    area = hd.ann.Measurements(
        name=codes.SCT.Area,
        values=np.array([a.values[0] for a in items], np.float32),
        unit=codes.UCUM.SquareMicrometer,
    )
    group = hd.ann.AnnotationGroup(
        number=1,
        uid=hd.UID(),
        label="Nuclei",
        annotated_property_category=codes.SCT.AnatomicalStructure,
        annotated_property_type=codes.SCT.Nucleus,
        graphic_type="POLYGON",
        graphic_data=[a.coordinates for a in items],
        algorithm_type="MANUAL",
        measurements=[area],
    )
    ann = hd.ann.MicroscopyBulkSimpleAnnotations(
        source_images=[source],
        annotation_coordinate_type="2D",
        annotation_groups=[group],
        series_instance_uid=hd.UID(),
        series_number=2,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="bench",
        manufacturer_model_name="bench",
        software_versions="1",
        device_serial_number="1",
    )
    ann.save_as(out)
    report(start, peak, baseline, bytes=out.stat().st_size)


def hd_ann_read(data: Path, path: Path) -> None:
    import highdicom as hd

    baseline = Peak.anon()
    peak = Peak()
    start = time.perf_counter()
    group = hd.ann.annread(path).get_annotation_groups()[0]
    data_ = group.get_graphic_data("2D")
    total = sum(float(points[0, 0]) for points in data_)
    _, values, _ = group.get_measurements()
    report(
        start,
        peak,
        baseline,
        annotations=len(data_),
        checksum=round(total + float(values.sum()), 1),
    )


#: Address space a highdicom case may take (protects the shared machine; a case that
#: needs more ends with MemoryError, reported as such).
HIGHDICOM_LIMIT = int(os.environ.get("BENCH_WSI_HD_LIMIT_GB", "14")) << 30


def main() -> None:
    case, data = sys.argv[1], Path(sys.argv[2])
    if case.startswith("hd-"):
        resource.setrlimit(resource.RLIMIT_AS, (HIGHDICOM_LIMIT, HIGHDICOM_LIMIT))
    out = Path(sys.argv[3]) if len(sys.argv) > 3 else data / "out.dcm"
    cases = {
        "rb-seg-write": lambda: rb_seg_write(data, out, False),
        "rb-seg-write-sparse": lambda: rb_seg_write(data, out, True),
        "rb-seg-read": lambda: rb_seg_read(data, out),
        "rb-seg-read-memory": lambda: rb_seg_read_memory(data, out),
        "hd-seg-write": lambda: hd_seg_write(data, out),
        "hd-seg-read": lambda: hd_seg_read(data, out),
        "rb-ann-write": lambda: rb_ann_write(data, out),
        "rb-ann-read": lambda: rb_ann_read(data, out),
        "hd-ann-write": lambda: hd_ann_write(data, out),
        "hd-ann-read": lambda: hd_ann_read(data, out),
        "prepare": lambda: prepare(data),
    }
    cases[case]()


if __name__ == "__main__":
    main()
