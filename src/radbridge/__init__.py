"""radbridge: machine-learning results as first-class DICOM.

The public surface is assembled here. Names load lazily (PEP 562), so importing
``radbridge`` (and starting the CLI) does not import SciPy, codecs or networking.

Examples
--------
>>> import radbridge
>>> radbridge.Volume.__name__, radbridge.encode_segmentation.__module__
('Volume', 'radbridge.iods.seg.writer')
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "AlgorithmIdentification": "radbridge.iods.seg",
    "Code": "radbridge.coding",
    "RadbridgeError": "radbridge.errors",
    "SegmentDescription": "radbridge.iods.seg",
    "Segmentation": "radbridge.iods.seg",
    "SeriesOptions": "radbridge.iods.common",
    "SliceRef": "radbridge.geometry",
    "SourceSeries": "radbridge.iods.source",
    "Volume": "radbridge.geometry",
    "VolumeGeometry": "radbridge.geometry",
    "encode_rtstruct": "radbridge.iods.rtstruct",
    "encode_segmentation": "radbridge.iods.seg",
    "read_image": "radbridge.io.nifti",
    "read_rtstruct": "radbridge.iods.rtstruct",
    "read_segmentation": "radbridge.iods.seg",
    "read_source_series": "radbridge.io.series",
    "read_volume": "radbridge.io.series",
    "scan": "radbridge.io.scan",
    "volume_from_datasets": "radbridge.geometry",
    "write_image": "radbridge.io.nifti",
}

__all__ = [
    "AlgorithmIdentification",
    "Code",
    "RadbridgeError",
    "SegmentDescription",
    "Segmentation",
    "SeriesOptions",
    "SliceRef",
    "SourceSeries",
    "Volume",
    "VolumeGeometry",
    "__version__",
    "encode_rtstruct",
    "encode_segmentation",
    "read_image",
    "read_rtstruct",
    "read_segmentation",
    "read_source_series",
    "read_volume",
    "scan",
    "volume_from_datasets",
    "write_image",
]

if TYPE_CHECKING:
    from radbridge.coding import Code
    from radbridge.errors import RadbridgeError
    from radbridge.geometry import SliceRef, Volume, VolumeGeometry, volume_from_datasets
    from radbridge.io.nifti import read_image, write_image
    from radbridge.io.scan import scan
    from radbridge.io.series import read_source_series, read_volume
    from radbridge.iods.common import SeriesOptions
    from radbridge.iods.rtstruct import encode_rtstruct, read_rtstruct
    from radbridge.iods.seg import (
        AlgorithmIdentification,
        Segmentation,
        SegmentDescription,
        encode_segmentation,
        read_segmentation,
    )
    from radbridge.iods.source import SourceSeries


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'radbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
