"""pydicom-seg cases; runs in its own venv (pydicom-seg needs pydicom < 3).

Usage: python seg_cases_pydicom_seg.py create|read DATA_DIR COUNT PATH
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pydicom_seg
import SimpleITK as sitk


def main() -> None:
    action, data, count, path = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    extra: dict[str, object] = {}
    if action == "create":
        files = sorted((data / "dicom").glob("*.dcm"))
        sources = [pydicom.dcmread(str(p), stop_before_pixels=True) for p in files]
        image = sitk.ReadImage(str(data / f"labels_{count}.nrrd"))
        template = pydicom_seg.template.from_dcmqi_metainfo(str(data / f"meta_{count}.json"))
        start = time.perf_counter()
        writer = pydicom_seg.MultiClassWriter(
            template=template,
            inplane_cropping=False,
            skip_empty_slices=True,
            skip_missing_segment=False,
        )
        writer.write(image, sources).save_as(str(path))
    else:
        start = time.perf_counter()
        result = pydicom_seg.MultiClassReader().read(pydicom.dcmread(str(path)))
        extra["voxels"] = int(np.count_nonzero(result.data))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - start, 3),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "bytes": path.stat().st_size,
                **extra,
            }
        )
    )


if __name__ == "__main__":
    main()
