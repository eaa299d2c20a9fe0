"""radbridge: machine-learning results as first-class DICOM.

The public surface is assembled here. Names load lazily (PEP 562), so importing
``radbridge`` (and starting the CLI) does not import SciPy, codecs or networking.

Examples
--------
>>> import radbridge
>>> radbridge.Volume.__name__, radbridge.encode_segmentation.__module__
('Volume', 'radbridge.iods.seg.writer')
"""

import typing as _typing

from radbridge import _lazy
from radbridge._version import __version__

#: Public name -> module that defines it.
_EXPORTS: dict[str, str] = {
    "AlgorithmIdentification": "radbridge.seg",
    "Code": "radbridge.coding",
    "Gateway": "radbridge.gateway",
    "Measurement": "radbridge.sr",
    "MeasurementGroup": "radbridge.sr",
    "MeasurementReport": "radbridge.sr",
    "Peer": "radbridge.net",
    "RadbridgeError": "radbridge.errors",
    "SegmentDescription": "radbridge.seg",
    "Segmentation": "radbridge.seg",
    "Series": "radbridge.iods.source",
    "SeriesOptions": "radbridge.iods.common",
    "SliceRef": "radbridge.geometry",
    "SourceSeries": "radbridge.iods.source",
    "StorageSCP": "radbridge.net",
    "Volume": "radbridge.geometry",
    "VolumeGeometry": "radbridge.geometry",
    "encode_key_objects": "radbridge.ko",
    "encode_measurement_report": "radbridge.sr",
    "encode_overlay_sc": "radbridge.sc",
    "encode_parametric_map": "radbridge.pm",
    "encode_rtstruct": "radbridge.rtstruct",
    "encode_segmentation": "radbridge.seg",
    "load_gateway_config": "radbridge.gateway",
    "read_image": "radbridge.io.nifti",
    "read_key_objects": "radbridge.ko",
    "read_measurement_report": "radbridge.sr",
    "read_parametric_map": "radbridge.pm",
    "read_rtstruct": "radbridge.rtstruct",
    "read_segmentation": "radbridge.seg",
    "read_series": "radbridge.io.series",
    "read_source_series": "radbridge.io.series",
    "read_structured_report": "radbridge.sr",
    "read_volume": "radbridge.io.series",
    "render_overlay": "radbridge.sc",
    "scan": "radbridge.io.scan",
    "send": "radbridge.net",
    "volume_from_datasets": "radbridge.geometry",
    "write_image": "radbridge.io.nifti",
}

__all__ = [
    "AlgorithmIdentification",
    "Code",
    "Gateway",
    "Measurement",
    "MeasurementGroup",
    "MeasurementReport",
    "Peer",
    "RadbridgeError",
    "SegmentDescription",
    "Segmentation",
    "Series",
    "SeriesOptions",
    "SliceRef",
    "SourceSeries",
    "StorageSCP",
    "Volume",
    "VolumeGeometry",
    "__version__",
    "encode_key_objects",
    "encode_measurement_report",
    "encode_overlay_sc",
    "encode_parametric_map",
    "encode_rtstruct",
    "encode_segmentation",
    "load_gateway_config",
    "read_image",
    "read_key_objects",
    "read_measurement_report",
    "read_parametric_map",
    "read_rtstruct",
    "read_segmentation",
    "read_series",
    "read_source_series",
    "read_structured_report",
    "read_volume",
    "render_overlay",
    "scan",
    "send",
    "volume_from_datasets",
    "write_image",
]

if _typing.TYPE_CHECKING:
    from radbridge.coding import Code
    from radbridge.errors import RadbridgeError
    from radbridge.gateway import Gateway, load_gateway_config
    from radbridge.geometry import SliceRef, Volume, VolumeGeometry, volume_from_datasets
    from radbridge.io.nifti import read_image, write_image
    from radbridge.io.scan import scan
    from radbridge.io.series import read_series, read_source_series, read_volume
    from radbridge.iods.common import SeriesOptions
    from radbridge.iods.source import Series, SourceSeries
    from radbridge.ko import encode_key_objects, read_key_objects
    from radbridge.net import Peer, StorageSCP, send
    from radbridge.pm import encode_parametric_map, read_parametric_map
    from radbridge.rtstruct import encode_rtstruct, read_rtstruct
    from radbridge.sc import encode_overlay_sc, render_overlay
    from radbridge.seg import (
        AlgorithmIdentification,
        Segmentation,
        SegmentDescription,
        encode_segmentation,
        read_segmentation,
    )
    from radbridge.sr import (
        Measurement,
        MeasurementGroup,
        MeasurementReport,
        encode_measurement_report,
        read_measurement_report,
        read_structured_report,
    )


__getattr__, __dir__ = _lazy.lazy(__name__, _EXPORTS, globals())
