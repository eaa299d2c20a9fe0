"""Read a series from disk: once, as a :class:`~radbridge.iods.source.Series`.

:func:`read_series` scans the folder (headers only), plans the slices and gathers
the context; its :meth:`~radbridge.iods.source.Series.volume` reads the pixels when
first asked. :func:`read_volume` and :func:`read_source_series` are the two halves
by themselves.

Examples
--------
>>> from pydicom import examples
>>> series = read_series(examples.get_path("ct"))  # a folder, a file, or a list of them
>>> series.geometry.shape, series.modality
((1, 128, 128), 'CT')
>>> vol = series.volume(rescale=True)
>>> vol.shape, round(vol.spacing[1], 3)
((1, 128, 128), 0.661)
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Sequence

from pydicom import dcmread
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radbridge.errors import DicomReadError, NotDicomError
from radbridge.geometry import Volume
from radbridge.io.scan import SeriesRecord, scan
from radbridge.iods.multiframe.fast_read import inflated_value_complete
from radbridge.iods.source import Series

__all__ = [
    "PathLike",
    "Series",
    "check_complete",
    "load_datasets",
    "read_series",
    "read_series_datasets",
    "read_source_series",
    "read_volume",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


_UNDEFINED = 0xFFFFFFFF
_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def check_complete(ds: Dataset, path: PathLike) -> None:
    """Raise :class:`DicomReadError` if the file ends before its last element does.

    pydicom reads a truncated file without complaint (a value cut short is
    returned as it is); this compares the last element's declared length with
    the file size (for a deflated data set, with the bytes pydicom inflated).
    """
    if not len(ds):
        raise DicomReadError(
            "file holds no data set after its header", path=path, hint="the file is truncated"
        )
    size = os.path.getsize(path)
    last = ds.get_item(max(ds.keys()))
    if not isinstance(last, RawDataElement) or last.value_tell is None:
        return
    inflated = inflated_value_complete(ds, last)
    if inflated is not None:
        complete = inflated
    elif last.length == _UNDEFINED:
        with open(path, "rb") as handle:
            handle.seek(max(0, size - 8))
            tail = handle.read(8)
        complete = tail == _SEQUENCE_END or (
            not ds.is_little_endian and tail == b"\xff\xfe\xe0\xdd\x00\x00\x00\x00"
        )
    else:
        complete = last.value_tell + last.length <= size
    if not complete:
        raise DicomReadError(
            f"file ends inside element {last.tag} (declared {last.length} bytes)",
            path=path,
            attribute=str(last.tag),
            hint="the file is truncated; copy it again from the source",
        )


def load_datasets(paths: Sequence[PathLike], *, headers_only: bool = False) -> list[Dataset]:
    """Read DICOM files, raising a clear error for the first one that cannot be read.

    Parameters
    ----------
    paths
        Files to read.
    headers_only
        Stop before the pixel data.
    """
    datasets: list[Dataset] = []
    for path in paths:
        try:
            ds = dcmread(path, stop_before_pixels=headers_only)
        except InvalidDicomError as exc:
            raise NotDicomError("not a DICOM file", path=path) from exc
        except Exception as exc:  # pydicom raises many types for damaged files
            raise DicomReadError(
                f"cannot be read ({type(exc).__name__}: {exc})",
                path=path,
                hint="the file may be truncated or damaged; copy it again from the source",
            ) from exc
        if not headers_only:
            check_complete(ds, path)
        datasets.append(ds)
    return datasets


def _select_series(
    source: PathLike | Sequence[PathLike],
    series_instance_uid: str | None,
    *,
    keep_headers: bool = False,
) -> SeriesRecord:
    index = scan(source, keep_headers=keep_headers)
    label = source if isinstance(source, str | os.PathLike) else None
    if series_instance_uid:
        return index.get_series(series_instance_uid)
    return index.only_image_series(label)


def read_series_datasets(
    source: PathLike | Sequence[PathLike],
    *,
    series_instance_uid: str | None = None,
    headers_only: bool = False,
) -> list[Dataset]:
    """Read the data sets of one image series found under ``source``.

    Parameters
    ----------
    source
        A folder, a file, or a list of files/folders.
    series_instance_uid
        The series to read when there are several image series.
    headers_only
        Stop before the pixel data.

    Raises
    ------
    MixedSeriesError
        No image series, or several and none selected.
    """
    series = _select_series(source, series_instance_uid, keep_headers=headers_only)
    if headers_only:
        return list(series.headers)  # the scan read them already: no second read
    return load_datasets(series.paths)


def read_series(
    source: PathLike | Sequence[PathLike],
    *,
    series_instance_uid: str | None = None,
    spacing_tolerance: float = 0.01,
    allow_nonuniform_spacing: bool = False,
) -> Series:
    """Read one image series (folder, files, or a multi-frame file) once.

    The folder is scanned and the slices planned from the headers now; the pixels
    are read by the first :meth:`~radbridge.iods.source.Series.volume` call. The
    result is what every object writer takes as its source.

    Parameters
    ----------
    source
        A folder, a file, or a list of files/folders.
    series_instance_uid
        Which series to read when ``source`` holds several image series.
    spacing_tolerance, allow_nonuniform_spacing
        See :func:`radbridge.geometry.plan_stack`.

    Raises
    ------
    MixedSeriesError
        No image series, or several and none selected.
    """
    record = _select_series(source, series_instance_uid, keep_headers=True)
    return Series.from_datasets(
        list(record.headers),
        sources=[str(p) for p in record.paths],
        spacing_tolerance=spacing_tolerance,
        allow_nonuniform_spacing=allow_nonuniform_spacing,
        load=functools.partial(load_datasets, record.paths),
    )


def read_volume(
    source: PathLike | Sequence[PathLike],
    *,
    series_instance_uid: str | None = None,
    rescale: bool = False,
    spacing_tolerance: float = 0.01,
    allow_nonuniform_spacing: bool = False,
) -> Volume:
    """Read one image series (folder, files, or a multi-frame file) into a volume.

    The same as ``read_series(source, ...).volume(rescale=rescale)``: use
    :func:`read_series` when you also need the series for a writer.

    Parameters
    ----------
    source, series_instance_uid, spacing_tolerance, allow_nonuniform_spacing
        As :func:`read_series` takes them.
    rescale
        Apply the Modality LUT (HU for CT, SUV-scaled values for PET, ...).

    Returns
    -------
    Volume
    """
    series = read_series(
        source,
        series_instance_uid=series_instance_uid,
        spacing_tolerance=spacing_tolerance,
        allow_nonuniform_spacing=allow_nonuniform_spacing,
    )
    return series.volume(rescale=rescale)


#: The former name of :func:`read_series` (the same function).
read_source_series = read_series
