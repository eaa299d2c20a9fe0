"""Compare a job's report with the patient's prior study on the PACS (``compare_with_prior``).

For a rule with ``compare_with_prior = true`` the gateway, after the model ran and the
results are encoded, asks the rule's PACS (``prior_from``, else its first PACS
destination) by C-FIND (QIDO-RS for a DICOMweb peer) for the patient's studies before
this one, keeps those with a series of the same modality (and body part, when both say
one), and retrieves their SR series by C-GET (WADO-RS), the most recent study first,
until one has a radbridge report. The prior's radbridge report is the newest
longitudinal comparison among them (it carries the chain's tracking UIDs), else a
radbridge TID 1500 report with lesions. When the two
reports are in different frames of reference the prior CT series is retrieved too and
registered with the current one (:mod:`radbridge.io.registration`). The comparison SR
(:func:`radbridge.sr.encode_comparison`) joins the job's outbox as the output
``compare`` and is delivered with the rest. No prior study, or none with a radbridge
report: no comparison (logged). The PACS unreachable: the job fails and is retried like
any other.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom import Dataset, dcmread

from radbridge.errors import DicomReadError, GeometryError
from radbridge.gateway.config import GatewayConfig
from radbridge.gateway.routing import Rule
from radbridge.gateway.store import Job
from radbridge.iods.common import SeriesOptions
from radbridge.net import Peer, find, get, qido, wado
from radbridge.uids import derived_uid

__all__ = [
    "PriorStudy",
    "compare_with_prior",
    "find_prior_study",
    "prior_peer",
    "prior_reports",
    "prior_studies",
]

log = logging.getLogger(__name__)

COMPARISON_DESCRIPTION = "radbridge longitudinal comparison"


@dataclass(frozen=True)
class PriorStudy:
    """The prior study found on the PACS: its UID, date and image series of the modality."""

    study_instance_uid: str
    study_date: str
    image_series: tuple[str, ...]


def prior_peer(rule: Rule, config: GatewayConfig) -> Peer | None:
    """Return the PACS to look for priors on: ``prior_from``, else the first PACS destination."""
    name = rule.prior_from or next((d for d in rule.destinations if d in config.peers), None)
    return config.peers.get(name) if name else None


def _query(
    peer: Peer, level: str, keys: dict[str, str], *, ae_title: str, study: str | None = None
) -> list[Dataset]:
    """C-FIND, or QIDO-RS for a DICOMweb peer (``transport = "dicomweb"``).

    An empty key is a return key: QIDO-RS returns it only when asked (``includefield``).
    """
    if peer.transport == "dicomweb":
        filters = {k: v for k, v in keys.items() if v}
        wanted = [k for k, v in keys.items() if not v]
        return qido(peer, level, study=study, keys=filters, fields=wanted)
    scope = {"StudyInstanceUID": study} if study else {}
    return find(peer, level, keys=scope | keys, ae_title=ae_title)


def _retrieve(peer: Peer, folder: Path, *, study: str, series: str, ae_title: str) -> None:
    """C-GET, or WADO-RS for a DICOMweb peer, one series into ``folder``."""
    if peer.transport == "dicomweb":
        wado(peer, folder, study=study, series=series)
    else:
        get(peer, folder, study=study, series=series, ae_title=ae_title)


def _facts(source: Dataset) -> dict[str, str]:
    return {
        keyword: str(source.get(keyword, "") or "")
        for keyword in (
            "PatientID",
            "IssuerOfPatientID",
            "StudyInstanceUID",
            "StudyDate",
            "StudyTime",
            "Modality",
            "BodyPartExamined",
        )
    }


def find_prior_study(peer: Peer, source: Dataset, *, ae_title: str) -> PriorStudy | None:
    """Return the patient's most recent earlier study with a series like ``source``'s.

    ``source`` is a header of the current series (patient ID, study UID and date,
    modality, body part examined).
    """
    return next(prior_studies(peer, source, ae_title=ae_title), None)


def prior_studies(peer: Peer, source: Dataset, *, ae_title: str) -> Iterator[PriorStudy]:
    """Yield the patient's earlier studies with a series like ``source``'s, newest first."""
    facts = _facts(source)
    if not facts["PatientID"] or not facts["StudyDate"]:
        return
    keys = {"PatientID": facts["PatientID"], "StudyDate": f"-{facts['StudyDate']}"}
    returned = {"StudyTime": "", "IssuerOfPatientID": ""}
    studies = _query(peer, "STUDY", keys | returned, ae_title=ae_title)
    now = (facts["StudyDate"], _clock(facts["StudyTime"]))
    candidates = sorted(
        (
            s
            for s in studies
            if str(s.get("StudyInstanceUID", "")) != facts["StudyInstanceUID"]
            and _same_patient(s, facts)
            and _before(_when(s), now)
        ),
        key=_when,
        reverse=True,
    )
    for study in candidates:
        uid = str(study.StudyInstanceUID)
        series = _query(
            peer,
            "SERIES",
            {"Modality": facts["Modality"], "BodyPartExamined": ""},
            study=uid,
            ae_title=ae_title,
        )
        body = facts["BodyPartExamined"].upper()
        alike = [
            str(s.SeriesInstanceUID)
            for s in series
            if not body or str(s.get("BodyPartExamined", "") or body).upper() == body
        ]
        if alike:
            yield PriorStudy(uid, str(study.get("StudyDate", "")), tuple(alike))


def _same_patient(study: Dataset, facts: dict[str, str]) -> bool:
    """Whether a matched study is the patient's: the very same ID, and issuer when both say.

    A C-FIND or QIDO-RS key is matched with wildcards (``*``, ``?``) and a backslash
    lists values, so an ID holding one of them also matches other patients' IDs;
    two hospitals' patients can share an ID under different issuers.
    """
    if str(study.get("PatientID", "") or "") != facts["PatientID"]:
        return False
    issuer = str(study.get("IssuerOfPatientID", "") or "")
    return not issuer or not facts["IssuerOfPatientID"] or issuer == facts["IssuerOfPatientID"]


def _clock(time: str) -> str:
    """Return a TM value as HHMMSS.FFFFFF (``0930`` and ``093000`` are the same), or ""."""
    whole, _, fraction = time.strip().partition(".")
    return f"{whole.ljust(6, '0')}.{fraction.ljust(6, '0')}" if whole.isdigit() else ""


def _when(study: Dataset) -> tuple[str, str]:
    return str(study.get("StudyDate", "") or ""), _clock(str(study.get("StudyTime", "") or ""))


def _before(when: tuple[str, str], now: tuple[str, str]) -> bool:
    """Whether a study at ``when`` came before ``now``; on the same day both times must say."""
    if when[0] != now[0]:
        return when[0] < now[0]
    return bool(when[1] and now[1]) and when[1] < now[1]


def prior_reports(folder: Path) -> list[Dataset]:
    """Return the TID 1500 reports with lesions among the retrieved files, comparisons first.

    A report without a lesion to follow (e.g. a reading's planar measurements) is left
    out: compared with it, every current lesion would be "new".
    """
    from radbridge.sr import longitudinal, read_measurement_report

    found = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        try:
            ds = dcmread(path)
            report = read_measurement_report(ds)
        except (DicomReadError, OSError, ValueError):
            continue
        if longitudinal.has_lesions(report):
            found.append(ds)
    return sorted(
        found,
        key=lambda ds: (
            str(ds.get("SeriesDescription", "")) == COMPARISON_DESCRIPTION,
            str(ds.get("ContentDate", "")) + str(ds.get("ContentTime", "")),
        ),
        reverse=True,
    )


def compare_with_prior(
    job: Job,
    rule: Rule,
    config: GatewayConfig,
    source: Dataset,
    current_sr: Dataset,
    image_paths: list[str],
) -> Dataset | None:
    """Return the comparison SR of ``current_sr`` with the prior study's report, or None.

    Raises
    ------
    NetworkError
        The PACS could not be queried or did not give the prior's objects (retried).
    """
    from radbridge.sr import compare_reports, encode_comparison

    peer = prior_peer(rule, config)
    if peer is None:
        return None
    with tempfile.TemporaryDirectory(prefix="radbridge-prior-") as scratch:
        found = _prior_report(job, peer, source, Path(scratch), config.ae_title)
        if found is None:
            return None
        prior, prior_sr = found
        try:
            comparison = compare_reports(prior_sr, current_sr)
        except GeometryError:  # another frame of reference: register the two CT series
            series = _measured_series(prior, prior_sr)
            transform = _register(peer, prior, series, Path(scratch), image_paths, config.ae_title)
            comparison = compare_reports(prior_sr, current_sr, transform=transform)
    if not comparison.lesions:
        log.info("job %d: no lesions in either report: no comparison", job.id)
        return None
    options = _options(job, prior_sr, current_sr)
    log.info(
        "job %d: compared with prior %s (%d lesions)",
        job.id,
        prior.study_instance_uid,
        len(comparison.lesions),
    )
    return encode_comparison(comparison, current_sr, options=options)


def _prior_report(
    job: Job, peer: Peer, source: Dataset, folder: Path, ae_title: str
) -> tuple[PriorStudy, Dataset] | None:
    """Return the newest earlier study with a radbridge report, and that report.

    A newer study without one (imported from elsewhere, not analysed, its report not
    delivered yet) is passed over: the comparison is with the last analysed visit.
    """
    searched = 0
    for prior in prior_studies(peer, source, ae_title=ae_title):
        searched += 1
        reports = _retrieve_reports(peer, prior, folder / str(searched), ae_title)
        if reports:
            return prior, reports[0]
        log.info("job %d: prior study %s has no radbridge report", job.id, prior.study_instance_uid)
    if not searched:
        log.info("job %d: no prior study on %s", job.id, peer.name or peer)
    return None


def _retrieve_reports(peer: Peer, prior: PriorStudy, folder: Path, ae_title: str) -> list[Dataset]:
    study = prior.study_instance_uid
    series = _query(peer, "SERIES", {"Modality": "SR"}, study=study, ae_title=ae_title)
    for item in series:
        uid = str(item.SeriesInstanceUID)
        _retrieve(peer, folder / "sr" / uid, study=study, series=uid, ae_title=ae_title)
    return prior_reports(folder / "sr") if series else []


def _measured_series(prior: PriorStudy, prior_sr: Dataset) -> str:
    """Return the prior image series the prior report was made on (else the first found).

    A prior study often holds a scout or other reconstructions besides the series the
    report measured; its Current Requested Procedure Evidence names that one.
    """
    referenced = [
        str(series.SeriesInstanceUID)
        for item in prior_sr.get("CurrentRequestedProcedureEvidenceSequence", [])
        if str(item.get("StudyInstanceUID", "")) == prior.study_instance_uid
        for series in item.get("ReferencedSeriesSequence", [])
    ]
    return next((uid for uid in referenced if uid in prior.image_series), prior.image_series[0])


def _register(
    peer: Peer,
    prior: PriorStudy,
    series: str,
    folder: Path,
    image_paths: list[str],
    ae_title: str,
) -> Any:
    from radbridge.io.registration import register_rigid
    from radbridge.io.series import read_series

    target = folder / "images"
    _retrieve(
        peer,
        target,
        study=prior.study_instance_uid,
        series=series,
        ae_title=ae_title,
    )
    prior_volume = read_series(target).volume(rescale=True)
    current_volume = read_series([Path(p) for p in image_paths]).volume(rescale=True)
    return register_rigid(prior_volume, current_volume)


def _options(job: Job, prior_sr: Dataset, current_sr: Dataset) -> SeriesOptions:
    key = (str(prior_sr.SOPInstanceUID), str(current_sr.SOPInstanceUID), "compare")
    return SeriesOptions(
        series_description=COMPARISON_DESCRIPTION,
        series_number=908,
        content_label="COMPARE",
        series_instance_uid=derived_uid(*key, "series"),
        sop_instance_uid=derived_uid(*key, "instance"),
        manufacturer="radbridge",
        timestamp=job.results_time(),  # fixed by the job: a re-run writes the same bytes
    )
