"""Query/retrieve as an SCU: C-FIND, C-GET and C-MOVE (to ourselves).

Retrieved instances are written as received, durably, to
``DIR/<study>/<series>/<sop>.dcm`` (the same layout and guarantees as the Storage
SCP); a retrieve that brings nothing, or ends with a failure status, raises.

Examples
--------
>>> from radbridge.net import parse_peer
>>> from radbridge.errors import AssociationError
>>> try:
...     find(parse_peer("NOBODY@127.0.0.1:1"), "STUDY")
... except AssociationError as err:
...     print("cannot open" in str(err))
True
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydicom import Dataset
from pynetdicom import build_context, build_role, evt
from pynetdicom.presentation import PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

from radbridge.errors import (
    AssociationError,
    ConfigError,
    DicomReadError,
    DimseStatusError,
    NetworkError,
    PeerTimeoutError,
)
from radbridge.io.part10 import file_meta_bytes, read_dataset_uids
from radbridge.net.dimse.qr_association import DEFAULT_AE_TITLE, associate, check_status
from radbridge.net.dimse.scp import StorageSCP
from radbridge.net.peers import Peer
from radbridge.net.receiver import NullSink, StoredInstance, store_instance
from radbridge.net.retrieved import RetrieveProgress, RetrieveReport, remove_stale_downloads

__all__ = ["RetrieveReport", "find", "get", "move"]

log = logging.getLogger(__name__)

_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_MODELS = {
    ("study", "find"): StudyRootQueryRetrieveInformationModelFind,
    ("study", "get"): StudyRootQueryRetrieveInformationModelGet,
    ("study", "move"): StudyRootQueryRetrieveInformationModelMove,
    ("patient", "find"): PatientRootQueryRetrieveInformationModelFind,
    ("patient", "get"): PatientRootQueryRetrieveInformationModelGet,
    ("patient", "move"): PatientRootQueryRetrieveInformationModelMove,
}
#: Return keys asked for at each level (empty = "send me this attribute").
_RETURN_KEYS = {
    "PATIENT": ("PatientID", "PatientName", "NumberOfPatientRelatedStudies"),
    "STUDY": (
        "StudyInstanceUID",
        "StudyDate",
        "StudyDescription",
        "ModalitiesInStudy",
        "PatientID",
        "NumberOfStudyRelatedInstances",
    ),
    "SERIES": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ),
    "IMAGE": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    ),
}
#: Storage SOP classes radbridge accepts on a C-GET association (at most 128 contexts).
_GET_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation
    "1.2.840.10008.5.1.4.1.1.30",  # Parametric Map
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT Structure Set
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic
)
_UNCOMPRESSED = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
)
_COMPRESSED = (
    "1.2.840.10008.1.2.1.99",  # Deflated
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless
)
#: Classes without pixel data: uncompressed (or deflated) only.
_NON_IMAGE = {
    "1.2.840.10008.5.1.4.1.1.88.11",
    "1.2.840.10008.5.1.4.1.1.88.22",
    "1.2.840.10008.5.1.4.1.1.88.33",
    "1.2.840.10008.5.1.4.1.1.88.34",
    "1.2.840.10008.5.1.4.1.1.88.59",
    "1.2.840.10008.5.1.4.1.1.481.3",
}


#: Presentation contexts an association may have (PS3.8 9.3.2.2: context IDs 1-255, odd).
_MAX_CONTEXTS = 128


def _get_contexts(held: Sequence[str] = ()) -> tuple[list[PresentationContext], list[str]]:
    """Storage contexts for the SCP role of a C-GET association, and their SOP classes.

    A peer accepts one transfer syntax per context and must then send in it, so
    Implicit VR Little Endian and each compressed syntax get a context of their own:
    the peer can send every instance as it stores it, without transcoding (which
    Orthanc 1.10.1 refuses for compressed SEG; with one context for both uncompressed
    syntaxes it accepted Explicit VR and transcoded every Implicit VR instance).
    The SOP classes ``held`` (those the study holds, from a
    C-FIND) come first, then the common ones of ``_GET_CLASSES`` while the 128
    contexts allowed (one is the query's) last: a class without a context cannot
    be sent, and Orthanc then fails the whole C-GET.
    """
    contexts: list[PresentationContext] = []
    classes: list[str] = []
    for sop_class in dict.fromkeys([*held, *_GET_CLASSES]):
        compressed = _COMPRESSED[:1] if sop_class in _NON_IMAGE else _COMPRESSED
        wanted = [build_context(sop_class, list(_UNCOMPRESSED))]
        wanted += [build_context(sop_class, syntax) for syntax in (_UNCOMPRESSED[1], *compressed)]
        if len(contexts) + len(wanted) >= _MAX_CONTEXTS:
            wanted = wanted[:1]  # uncompressed only: the peer may transcode
            if len(contexts) + 1 >= _MAX_CONTEXTS:
                break
        contexts += wanted
        classes.append(sop_class)
    return contexts, classes


def _classes_held(peer: Peer, study: str, series: str | None, ae_title: str) -> list[str]:
    """Return the SOP classes of a study's (or series') instances, by C-FIND; [] if unknown.

    Study Root C-FIND at SERIES level, then at IMAGE level per series (a hierarchical
    search needs the series UID), on one association. Any failure gives [] (the
    common classes are proposed then).
    """
    model = _MODELS[("study", "find")]
    classes: dict[str, None] = {}
    try:
        with associate(peer, [build_context(model)], ae_title=ae_title) as assoc:
            series_uids = [series] if series else []
            if not series:
                query = _identifier("SERIES", {"StudyInstanceUID": study})
                for _, _, found in _responses(
                    peer, assoc.send_c_find(query, model), operation="C-FIND"
                ):
                    if found is not None and found.get("SeriesInstanceUID"):
                        series_uids.append(str(found.SeriesInstanceUID))
            for uid in series_uids:
                keys = {"StudyInstanceUID": study, "SeriesInstanceUID": uid}
                query = _identifier("IMAGE", keys)
                for _, _, found in _responses(
                    peer, assoc.send_c_find(query, model), operation="C-FIND"
                ):
                    if found is not None and found.get("SOPClassUID"):
                        classes[str(found.SOPClassUID)] = None
    except NetworkError as exc:
        log.info("cannot learn the SOP classes of %s from %s (%s)", series or study, peer, exc)
        return []
    return list(classes)


def _identifier(level: str, keys: Mapping[str, str]) -> Dataset:
    level = level.upper()
    if level not in _LEVELS:
        raise ConfigError(
            f"unknown query level {level!r}", attribute="level", hint=f"use one of {_LEVELS}"
        )
    ds = Dataset()
    if any(isinstance(v, str) and not v.isascii() for v in keys.values()):
        # pydicom would encode the values in the default repertoire (ASCII), turning
        # each other character into "?", the single-character wildcard (PS3.4
        # C.2.2.2.4): "Διονυσιος*" would match every name of 9 characters or more
        ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    for keyword in _RETURN_KEYS[level]:
        setattr(ds, keyword, "")
    for keyword, value in keys.items():
        try:
            setattr(ds, keyword, value)
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{keyword} = {value!r} cannot be a query key ({exc})", attribute=keyword
            ) from exc
    return ds


def find(
    peer: Peer,
    level: str = "STUDY",
    *,
    keys: Mapping[str, str] | None = None,
    model: str = "study",
    ae_title: str = DEFAULT_AE_TITLE,
) -> list[Dataset]:
    """C-FIND at ``level`` with matching ``keys`` (DICOM keywords); return the identifiers.

    Parameters
    ----------
    peer
        The query/retrieve SCP.
    level
        ``PATIENT``, ``STUDY``, ``SERIES`` or ``IMAGE``.
    keys
        Matching keys by keyword, e.g. ``{"StudyInstanceUID": uid}``; the usual
        return keys of the level are always asked for.
    model
        ``"study"`` (Study Root) or ``"patient"`` (Patient Root). Study Root has
        no patient level, so ``level="PATIENT"`` always uses Patient Root.
    ae_title
        Our calling AE title.

    Returns
    -------
    list of pydicom.Dataset
        One identifier per match (empty when nothing matches).

    Raises
    ------
    AssociationError, PeerTimeoutError
        The peer cannot be reached, or aborted instead of answering.
    DimseStatusError
        The peer answered a failure status.
    """
    if model not in ("study", "patient"):
        raise ConfigError(
            f"unknown query/retrieve model {model!r}",
            attribute="model",
            hint="use study or patient",
        )
    if level.upper() == "PATIENT":
        model = "patient"
    query_model = _MODELS[(model, "find")]
    identifier = _identifier(level, keys or {})
    started = time.monotonic()
    matches: list[Dataset] = []
    with associate(peer, [build_context(query_model)], ae_title=ae_title) as assoc:
        responses = assoc.send_c_find(identifier, query_model)
        try:
            for code, _, found in _responses(
                peer, responses, operation="C-FIND", ae_title=ae_title
            ):
                if code in (0xFF00, 0xFF01) and found is not None:
                    matches.append(found)
        except DimseStatusError as err:
            if err.status == 0xFE00:
                raise _cut_short(err, len(matches)) from err
            raise
    log.info(
        "C-FIND %s on %s: %d matches in %.2f s",
        level,
        peer,
        len(matches),
        time.monotonic() - started,
    )
    return matches


def _cut_short(err: DimseStatusError, count: int) -> DimseStatusError:
    """Name a C-FIND the peer ended with Cancel (0xFE00) that we never asked for.

    Orthanc does so when a query matches more than its ``LimitFindResults`` (or
    ``LimitFindInstances``): the matches received are only part of the answer.
    """
    better = DimseStatusError(
        f"{err.message}: the peer stopped the search after {count} matches, "
        "so they are not all the matches",
        path=err.path,
        attribute="Status",
        hint="narrow the query (a patient, a modality, one study's series), or raise the "
        "peer's limit of results (Orthanc: LimitFindResults, LimitFindInstances)",
    )
    better.status = err.status
    return better


def _responses(
    peer: Peer,
    responses: Iterable[tuple[Dataset, Dataset | None]],
    *,
    operation: str,
    subject: str = "",
    ae_title: str = DEFAULT_AE_TITLE,
) -> Iterator[tuple[int, Dataset, Dataset | None]]:
    """Yield (status, response, identifier), raising typed errors for failures.

    A peer that aborts the association instead of answering (Orthanc does so for
    a calling AE it does not know) raises :class:`AssociationError`.
    """
    about = f" for {subject}" if subject else ""
    started = time.monotonic()
    for response, identifier in responses:
        if "Status" not in response:
            # pynetdicom yields an empty response, and aborts, both when the peer aborts
            # and when no answer came within the DIMSE timeout: the elapsed time tells
            if time.monotonic() - started < 0.9 * peer.timeout_s:
                raise AssociationError(
                    f"{peer} aborted the association instead of answering {operation}{about}",
                    path=peer.name,
                    hint=f"the peer may not allow {operation} from AE title {ae_title!r}: "
                    "register it on the peer (Orthanc: DicomModalities)",
                )
            raise PeerTimeoutError(
                f"{peer} sent no {operation} response{about} within {peer.timeout_s:g} s",
                path=peer.name,
                hint="raise timeout_s for a slow peer (it may be searching a large archive), "
                "or narrow the query",
            )
        yield (
            check_status(peer, response, operation=operation, subject=subject),
            response,
            identifier,
        )
        started = time.monotonic()  # the timeout runs from the last response


def _retrieve_identifier(study: str, series: str | None) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES" if series else "STUDY"
    ds.StudyInstanceUID = study
    if series:
        ds.SeriesInstanceUID = series
    return ds


class _Writer:
    """C-STORE handler of a C-GET association: durable writes, counts."""

    def __init__(self, out_dir: Path, report: RetrieveReport) -> None:
        self.out_dir = out_dir
        self.report = report
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> int:
        data = event.request.DataSet.getvalue()
        syntax = str(event.context.transfer_syntax)
        try:
            study, series, sop, sop_class = read_dataset_uids(data, syntax)
            sop_class = sop_class or str(event.request.AffectedSOPClassUID)
            meta = file_meta_bytes(sop_class, sop, syntax)
            stored = store_instance(
                self.out_dir, meta, data, study=study, series=series, sop=sop,
                sop_class=sop_class, digest=False,
            )  # fmt: skip
        except DicomReadError:
            return 0xC000
        except OSError:
            return 0xA700
        with self.lock:
            self.report.add(stored.path)
        return 0x0000


def _finish(
    peer: Peer, report: RetrieveReport, last: Dataset | None, what: str, operation: str
) -> RetrieveReport:
    """Count the sub-operations of the last response, time and log the retrieve."""
    if last is not None and "NumberOfFailedSuboperations" in last:
        report.failed += int(last.NumberOfFailedSuboperations or 0)
        report.warnings += int(last.get("NumberOfWarningSuboperations", 0) or 0)
    if not report.files:
        raise NetworkError(
            f"{peer} sent no instances for {what}",
            path=peer.name,
            hint="check the UIDs (radbridge query) and that the peer holds the study",
        )
    count, seconds = len(report.files), report.seconds
    log.info("%s from %s: %d instances in %.2f s", operation, peer, count, seconds)
    return report


def _unknown_destination(
    peer: Peer, err: DimseStatusError, ae_title: str, host: str, port: int
) -> DimseStatusError:
    better = DimseStatusError(
        f"{err.message} before sending anything",
        path=peer.name,
        attribute="Status",
        hint=f"the peer may not know {ae_title!r} at {host}:{port} as a move destination "
        "(Orthanc: DicomModalities), or may not hold the study; see its log",
    )
    better.status = err.status
    return better


def get(
    peer: Peer,
    out_dir: str | os.PathLike[str],
    *,
    study: str,
    series: str | None = None,
    ae_title: str = DEFAULT_AE_TITLE,
    progress: RetrieveProgress | None = None,
) -> RetrieveReport:
    """C-GET a study (or one series) into ``out_dir``.

    ``progress`` is called with (instances written, None) as they arrive.

    Raises
    ------
    DimseStatusError
        The peer answered a failure status.
    NetworkError
        Nothing was retrieved.
    """
    started = time.monotonic()
    remove_stale_downloads(out_dir, study, series)
    report = RetrieveReport(str(peer), progress=progress)
    query_model = _MODELS[("study", "get")]
    storage, classes = _get_contexts(_classes_held(peer, study, series, ae_title))
    contexts = [build_context(query_model), *storage]
    roles = [build_role(c, scp_role=True) for c in classes]
    handler = _Writer(Path(out_dir), report)
    last: Dataset | None = None
    with associate(
        peer, contexts, ae_title=ae_title, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, handler)]
    ) as assoc:
        responses = assoc.send_c_get(_retrieve_identifier(study, series), query_model)
        for _, response, _ in _responses(
            peer, responses, operation="C-GET", subject=series or study, ae_title=ae_title
        ):
            last = response
    report.seconds = time.monotonic() - started
    return _finish(peer, report, last, series or study, "C-GET")


def move(
    peer: Peer,
    out_dir: str | os.PathLike[str],
    *,
    study: str,
    series: str | None = None,
    ae_title: str = DEFAULT_AE_TITLE,
    port: int = 0,
    host: str = "127.0.0.1",
    progress: RetrieveProgress | None = None,
) -> RetrieveReport:
    """C-MOVE a study (or series) to ourselves: a Storage SCP on ``host:port`` receives it.

    ``progress`` is called with (instances written, None) as they arrive.

    The peer must know ``ae_title`` as a move destination at ``host:port``.

    Raises
    ------
    DimseStatusError
        E.g. ``0xA801``: the peer does not know our AE title as a destination.
    NetworkError
        Nothing was retrieved.
    """
    started = time.monotonic()
    remove_stale_downloads(out_dir, study, series)
    report = RetrieveReport(str(peer), progress=progress)
    query_model = _MODELS[("study", "move")]

    class Collect(NullSink):
        def instance_stored(self, instance: StoredInstance, transfer_id: str) -> None:
            report.add(instance.path)

    last: Dataset | None = None
    scp = StorageSCP(out_dir, ae_title=ae_title, host=host, port=port, sink=Collect())
    with scp, associate(peer, [build_context(query_model)], ae_title=ae_title) as assoc:
        responses = assoc.send_c_move(_retrieve_identifier(study, series), ae_title, query_model)
        try:
            for _, response, _ in _responses(
                peer,
                responses,
                operation="C-MOVE",
                subject=series or study,
                ae_title=ae_title,
            ):
                last = response
        except DimseStatusError as err:
            if err.status == 0xC000 and last is None:  # Orthanc's answer to an unknown destination
                raise _unknown_destination(peer, err, ae_title, host, scp.port) from err
            raise
    report.seconds = time.monotonic() - started
    return _finish(peer, report, last, series or study, "C-MOVE")
