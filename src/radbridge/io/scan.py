"""Index a folder tree of DICOM files into patients → studies → series → instances.

Files that are not DICOM (``.DS_Store``, ``README``, thumbnails) are skipped
with a debug log line; files that look like DICOM but cannot be parsed
(truncated, damaged) are skipped with a warning and listed in
:attr:`DicomIndex.skipped`, so nothing is silently lost.

Examples
--------
>>> from pydicom import examples
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> examples.ct.save_as(folder / "ct.dcm")
>>> (folder / ".DS_Store").write_bytes(b"Bud1" * 2)
8
>>> index = scan(folder)
>>> [(s.modality, len(s.instances)) for s in index.series()]
[('CT', 1)]
>>> [p.name for p, _ in index.skipped]
['.DS_Store']
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from radbridge.errors import InvalidAttributeError, MixedSeriesError, NotDicomError
from radbridge.iods.multiframe.fast_read import check_elements

__all__ = [
    "NON_IMAGE_MODALITIES",
    "DicomIndex",
    "InstanceRecord",
    "PatientRecord",
    "SeriesRecord",
    "StudyRecord",
    "read_header",
    "scan",
]

log = logging.getLogger(__name__)

#: Modalities whose series are results or documents, not images to build volumes from.
NON_IMAGE_MODALITIES = frozenset(
    {
        "SEG",
        "SR",
        "KO",
        "PR",
        "RTSTRUCT",
        "RTPLAN",
        "RTDOSE",
        "RTRECORD",
        "REG",
        "RWV",
        "DOC",
        "FID",
        "PLAN",
    }
)
_DICOMDIR = "1.2.840.10008.1.3.10"
_IGNORED_NAMES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})


@dataclass(frozen=True)
class InstanceRecord:
    """One DICOM instance found on disk."""

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    instance_number: int | None
    number_of_frames: int


@dataclass
class SeriesRecord:
    """A series and its instances (in the order the files were found)."""

    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    series_description: str
    frame_of_reference_uid: str | None
    instances: list[InstanceRecord] = field(default_factory=list)
    headers: list[Dataset] = field(default_factory=list, repr=False)

    @property
    def paths(self) -> list[Path]:
        """Paths of the instances."""
        return [i.path for i in self.instances]

    @property
    def is_image(self) -> bool:
        """Whether this series holds images (not results or documents)."""
        return self.modality not in NON_IMAGE_MODALITIES


@dataclass
class StudyRecord:
    """A study and its series."""

    study_instance_uid: str
    study_date: str
    study_description: str
    series: dict[str, SeriesRecord] = field(default_factory=dict)


@dataclass
class PatientRecord:
    """A patient and their studies. Holds identifiers: never log these."""

    patient_id: str
    studies: dict[str, StudyRecord] = field(default_factory=dict)


@dataclass
class DicomIndex:
    """What :func:`scan` found."""

    patients: dict[str, PatientRecord] = field(default_factory=dict)
    skipped: list[tuple[Path, str]] = field(default_factory=list)

    def studies(self) -> list[StudyRecord]:
        """All studies, in the order found."""
        return [st for p in self.patients.values() for st in p.studies.values()]

    def series(self) -> list[SeriesRecord]:
        """All series, in the order found."""
        return [se for st in self.studies() for se in st.series.values()]

    def instance_count(self) -> int:
        """Return the number of indexed instances."""
        return sum(len(s.instances) for s in self.series())

    def get_series(self, series_instance_uid: str) -> SeriesRecord:
        """Return one series by UID, or raise :class:`~radbridge.errors.MixedSeriesError`."""
        for series in self.series():
            if series.series_instance_uid == series_instance_uid:
                return series
        raise MixedSeriesError(
            f"no series with this UID among {len(self.series())} series found",
            attribute=f"SeriesInstanceUID={series_instance_uid}",
            hint="list the series with `radbridge info PATH`",
        )

    def only_image_series(self, source: str | os.PathLike[str] | None = None) -> SeriesRecord:
        """Return the single image series, or raise if there are none or several."""
        images = [s for s in self.series() if s.is_image]
        if len(images) == 1:
            return images[0]
        if not images:
            raise MixedSeriesError(
                "no image series found",
                path=source,
                hint="point at a folder of CT/MR/PET images"
                + (
                    f" ({len(self.skipped)} files were not DICOM or unreadable)"
                    if self.skipped
                    else ""
                ),
            )
        listing = "; ".join(
            f"{s.series_instance_uid} ({s.modality}, {len(s.instances)} instances)" for s in images
        )
        raise MixedSeriesError(
            f"{len(images)} image series found: {listing}",
            path=source,
            attribute="SeriesInstanceUID",
            hint="choose one with series_instance_uid= "
            "(CLI: --series UID; radbridge batch: the manifest's series column)",
        )


def read_header(path: str | os.PathLike[str]) -> Dataset:
    """Read a DICOM file's header (everything before the pixel data).

    Files without the 128-byte preamble are accepted when they start with a
    plausible group 0002 or 0008 element.

    Raises
    ------
    NotDicomError
        The file is not DICOM.
    """
    try:
        return dcmread(path, stop_before_pixels=True)
    except InvalidDicomError as exc:
        with open(path, "rb") as handle:
            start = handle.read(4)
        if start[:2] in (b"\x02\x00", b"\x08\x00"):
            try:
                return dcmread(path, stop_before_pixels=True, force=True)
            except Exception as inner:  # damaged raw data set
                raise NotDicomError(
                    f"looks like a raw DICOM data set but cannot be parsed ({inner})",
                    path=path,
                    hint="the file may be truncated",
                ) from inner
        raise NotDicomError("not a DICOM file", path=path) from exc


def _walk(roots: Iterable[Path], recursive: bool) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        if not root.is_dir():
            raise NotDicomError("no such file or folder", path=root, hint="check the path")
        if recursive:
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
                for name in sorted(filenames):
                    yield Path(dirpath) / name
        else:
            yield from sorted(p for p in root.iterdir() if p.is_file())


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def scan(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    recursive: bool = True,
    keep_headers: bool = False,
) -> DicomIndex:
    """Index DICOM files under one or several paths.

    Parameters
    ----------
    paths
        Files and/or folders.
    recursive
        Descend into sub-folders (hidden folders are skipped).
    keep_headers
        Keep each instance's header data set on its series (for callers that
        need geometry without re-reading files).

    Returns
    -------
    DicomIndex
    """
    roots = [Path(paths)] if isinstance(paths, str | os.PathLike) else [Path(p) for p in paths]
    index = DicomIndex()
    seen: dict[str, Path] = {}
    for path in _walk(roots, recursive):
        if path.name in _IGNORED_NAMES:
            log.debug("skipping %s: not DICOM", path.name)
            index.skipped.append((path, "not DICOM"))
            continue
        try:
            ds = read_header(path)
            check_elements(ds, name=path)
        except NotDicomError as exc:
            log.debug("skipping a file: %s", exc.message)
            index.skipped.append((path, exc.message))
            continue
        except InvalidAttributeError as exc:
            log.warning("skipping a damaged DICOM file (%s)", exc.attribute)
            index.skipped.append((path, f"damaged: {exc.message}"))
            continue
        except Exception as exc:  # truncated or damaged files
            log.warning("skipping an unreadable DICOM file (%s)", type(exc).__name__)
            index.skipped.append((path, f"unreadable: {exc}"))
            continue
        _add(index, seen, path, ds, keep_headers)
    log.info(
        "indexed %d instances in %d series, skipped %d files",
        index.instance_count(),
        len(index.series()),
        len(index.skipped),
    )
    return index


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword, "") or "")


def _sop_class(ds: Dataset) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else ""))


def _skip_reason(ds: Dataset, seen: dict[str, Path]) -> str | None:
    """Return why a file is not indexed (a DICOMDIR, UIDs missing, a duplicate), or None."""
    if _sop_class(ds) == _DICOMDIR:
        return "DICOMDIR"
    sop_instance = _text(ds, "SOPInstanceUID")
    if not (sop_instance and _text(ds, "SeriesInstanceUID") and _text(ds, "StudyInstanceUID")):
        log.warning("skipping a DICOM file without SOP/series/study UIDs")
        return "missing SOPInstanceUID, SeriesInstanceUID or StudyInstanceUID"
    if sop_instance in seen:
        log.warning("skipping a duplicate of instance %s", sop_instance)
        return f"duplicate of {seen[sop_instance]}"
    return None


def _series_record(index: DicomIndex, ds: Dataset) -> SeriesRecord:
    """Return the record of the file's series (patient, study and series made when new)."""
    patient_id, study_uid = _text(ds, "PatientID"), _text(ds, "StudyInstanceUID")
    patient = index.patients.setdefault(patient_id, PatientRecord(patient_id))
    study = patient.studies.get(study_uid)
    if study is None:
        study = StudyRecord(study_uid, _text(ds, "StudyDate"), _text(ds, "StudyDescription"))
        patient.studies[study_uid] = study
    series_uid = _text(ds, "SeriesInstanceUID")
    series = study.series.get(series_uid)
    if series is None:
        series = SeriesRecord(
            series_instance_uid=series_uid,
            study_instance_uid=study_uid,
            modality=_text(ds, "Modality"),
            series_number=_int_or_none(ds.get("SeriesNumber")),
            series_description=_text(ds, "SeriesDescription"),
            frame_of_reference_uid=_text(ds, "FrameOfReferenceUID") or None,
        )
        study.series[series_uid] = series
    return series


def _add(
    index: DicomIndex, seen: dict[str, Path], path: Path, ds: Dataset, keep_headers: bool
) -> None:
    reason = _skip_reason(ds, seen)
    if reason is not None:
        index.skipped.append((path, reason))
        return
    sop_instance = _text(ds, "SOPInstanceUID")
    seen[sop_instance] = path
    series = _series_record(index, ds)
    series.instances.append(
        InstanceRecord(
            path=path,
            sop_class_uid=_sop_class(ds),
            sop_instance_uid=sop_instance,
            instance_number=_int_or_none(ds.get("InstanceNumber")),
            number_of_frames=_int_or_none(ds.get("NumberOfFrames")) or 1,
        )
    )
    if keep_headers:
        series.headers.append(ds)
