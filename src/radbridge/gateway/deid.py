"""De-identification before a model, and re-identification of its results.

A rule with ``deidentify = true``, or a model marked external (``"external":
true`` in its model card, or an ``external = True`` attribute), never sees the
patient: the gateway pseudonymises the series following the PS3.15 Basic
Application Confidentiality Profile, runs the model on the copy, encodes the
results on the copy, and re-identifies them into the original study before they
reach the outbox — original Study/Series/SOP Instance and Frame of Reference
UIDs, the original patient and study modules, and references to the original
instances.

How:

- **dicognito** (a maintained pydicom-based anonymiser) does the profile's core:
  every UID but class and transfer syntax UIDs is replaced by a UID hashed from
  a secret seed (the same original always gets the same pseudonym, so a series
  stays one series and references stay consistent), names and IDs by generated
  ones, dates and times shifted by one offset, institution and address replaced.
  radbridge then removes what the profile lists for removal and dicognito keeps
  (descriptions, comments, patient age/size/weight, admission, visit and order
  details, device IDs, clinical trial subject, content sequences, private
  attributes, ...; see :data:`REMOVED`), and records the method (DCM 113100, 113107).
- The seed and the UID mapping (original -> pseudonym) are kept in the gateway's
  database (:meth:`~radbridge.gateway.store.Store.save_pseudonyms`), a 0600 file,
  before the model runs; they are never logged. A job run again after a crash
  gets the same pseudonyms and re-identifies with the stored mapping.
- A series whose images say ``BurnedInAnnotation = YES`` is refused: text in
  the pixels cannot be removed by header rules.

Examples
--------
>>> from pydicom import examples
>>> ct = examples.ct
>>> pseudonyms = map_uids([ct], new_seed())
>>> import copy
>>> [seen] = pseudonymise([copy.deepcopy(ct)], pseudonyms)
>>> str(seen.PatientName) != str(ct.PatientName), seen.StudyInstanceUID != ct.StudyInstanceUID
(True, True)
>>> pseudonyms.original(str(seen.StudyInstanceUID)) == ct.StudyInstanceUID
True
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.multival import MultiValue

from radbridge._optional import require
from radbridge.coding import dcm
from radbridge.errors import GatewayError
from radbridge.iods.source import CONTEXT_KEYWORDS

__all__ = [
    "REMOVED",
    "Pseudonyms",
    "map_uids",
    "new_seed",
    "pseudonymise",
    "reidentify",
]

#: Attributes the Basic Profile (PS3.15 Table E.1-1) removes (X, or X/Z, X/D, X/Z/D) or
#: replaces (the Clinical Trial Subject and Content Sequence, D/Z) that dicognito leaves
#: in place; removed from every item, at any depth (the model's copy is never delivered).
REMOVED = frozenset(
    {
        "AcquisitionComments",
        "AcquisitionContextSequence",
        "AcquisitionDeviceProcessingDescription",
        "AdditionalPatientHistory",
        "AdmissionID",
        "AdmittingDiagnosesDescription",
        "Allergies",
        "CassetteID",
        "ClinicalTrialProtocolName",
        "ClinicalTrialSiteName",
        "ClinicalTrialSponsorName",
        "ClinicalTrialSubjectID",
        "ClinicalTrialSubjectReadingID",
        "CommentsOnThePerformedProcedureStep",
        "ContentSequence",
        "DerivationDescription",
        "DetectorID",
        "DeviceSerialNumber",
        "DischargeDiagnosisDescription",
        "DistributionAddress",
        "EthnicGroup",
        "FrameComments",
        "GantryID",
        "IdentifyingComments",
        "ImageComments",
        "ImagePresentationComments",
        "InstitutionalDepartmentName",
        "InterpretationText",
        "MedicalAlerts",
        "OrderCallbackPhoneNumber",
        "OrderEntererLocation",
        "PatientAge",
        "PatientComments",
        "PatientInstitutionResidence",
        "PatientSexNeutered",
        "PatientSize",
        "PatientState",
        "PatientTransportArrangements",
        "PatientWeight",
        "PerformedLocation",
        "PerformedProcedureStepDescription",
        "PerformedStationName",
        "PlateID",
        "PregnancyStatus",
        "ProtocolName",
        "ReasonForStudy",
        "ReasonForTheRequestedProcedure",
        "ReferencedPatientSequence",
        "ReferencedStudySequence",
        "ReferringPhysicianAddress",
        "ReferringPhysicianTelephoneNumbers",
        "RequestAttributesSequence",
        "RequestedProcedureDescription",
        "ResultsComments",
        "ScheduledPatientInstitutionResidence",
        "ScheduledProcedureStepDescription",
        "ScheduledStationName",
        "SeriesDescription",
        "ServiceEpisodeDescription",
        "SmokingStatus",
        "SpecialNeeds",
        "StudyComments",
        "StudyDescription",
        "StudyIDIssuer",
        "TextComments",
        "VisitComments",
    }
)
_METHOD = (
    dcm("113100", "Basic Application Confidentiality Profile"),
    dcm("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
)
_KEEP = ("TransferSyntaxUID",)
_TEXT = frozenset(
    {"UI", "SH", "LO", "ST", "LT", "UT", "CS", "UC"}
)  # UIDs that are not identifiers (class UIDs end "ClassUID")

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Pseudonyms:
    """The secret of one de-identified series version: seed and UID mapping.

    Parameters
    ----------
    seed
        The dicognito seed (hex); the same seed gives the same pseudonyms.
    uids
        Original UID -> pseudonym, for every UID of the frozen inputs.
    """

    seed: str
    uids: Mapping[str, str]
    _reverse: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_reverse", {v: k for k, v in self.uids.items()})

    def original(self, pseudonym: str) -> str | None:
        """Return the original of ``pseudonym`` (None: not a pseudonym of these inputs)."""
        return self._reverse.get(pseudonym)


def new_seed() -> str:
    """Return a new random seed (128 bits, hex)."""
    return secrets.token_hex(16)


def _is_identifier(element: DataElement) -> bool:
    keyword = element.keyword or ""
    return (
        element.VR == "UI"
        and bool(element.value)
        and not keyword.endswith("ClassUID")
        and keyword not in _KEEP
    )


def _walk_uids(ds: Dataset, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Yield (path, value) of every identifying UID in ``ds``, at any depth."""
    for element in ds:
        if element.VR == "SQ":
            for index, item in enumerate(element.value):
                yield from _walk_uids(item, (*path, element.tag, index))
        elif _is_identifier(element):
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            for index, value in enumerate(values):
                yield (*path, element.tag, index), str(value)


def _anonymiser(seed: str) -> Any:
    dicognito = require("dicognito.anonymizer", "deid", purpose="de-identify series")
    return dicognito.Anonymizer(seed=seed)


def _strip(ds: Dataset) -> None:
    ds.remove_private_tags()
    for element in list(ds):
        if element.keyword in REMOVED:
            del ds[element.tag]
        elif element.VR == "SQ":
            for item in element.value:
                _strip(item)


def _check_pixels(ds: Dataset) -> None:
    if str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise GatewayError(
            f"instance {ds.get('SOPInstanceUID', '?')} has burned-in annotation",
            attribute="BurnedInAnnotation",
            hint="text in the pixels cannot be de-identified; route this series to a rule "
            "without de-identification, or clean its pixels first",
        )


def _pseudonymise_one(ds: Dataset, anonymiser: Any) -> None:
    _check_pixels(ds)
    if not hasattr(ds, "file_meta"):
        ds.file_meta = FileMetaDataset()
    anonymiser.anonymize(ds)
    _strip(ds)
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethodCodeSequence = [code.to_dataset() for code in _METHOD]


def pseudonymise(datasets: Sequence[Dataset], pseudonyms: Pseudonyms) -> list[Dataset]:
    """Pseudonymise ``datasets`` in place (no copy of the pixels) and return them.

    Raises
    ------
    GatewayError
        An image has burned-in annotation, or a UID is not in the stored mapping
        (the mapping belongs to other inputs).
    OptionalDependencyError
        dicognito is not installed (``pip install 'radbridge[deid]'``).
    """
    anonymiser = _anonymiser(pseudonyms.seed)
    for ds in datasets:
        _pseudonymise_one(ds, anonymiser)
        for _, value in _walk_uids(ds):
            if pseudonyms.original(value) is None:
                raise GatewayError(
                    "a pseudonymised UID is not in the stored mapping of this series",
                    attribute="pseudonyms",
                    hint="the inputs changed since they were de-identified; run the series again",
                )
    return list(datasets)


def map_uids(headers: Sequence[Dataset], seed: str) -> Pseudonyms:
    """Pseudonymise ``headers`` with ``seed`` and return the UID mapping it makes.

    Headers suffice (``stop_before_pixels``). Every identifying UID of every
    header is paired with its pseudonym by its place in the data set.
    """
    anonymiser = _anonymiser(seed)
    uids: dict[str, str] = {}
    for ds in headers:
        before = dict(_walk_uids(ds))
        seen = copy.deepcopy(ds)
        _pseudonymise_one(seen, anonymiser)
        for path, value in _walk_uids(seen):
            original = before.get(path)
            if original is not None:
                uids.setdefault(original, value)
    return Pseudonyms(seed, uids)


def _restore_uids(ds: Dataset, pseudonyms: Pseudonyms) -> None:
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                _restore_uids(item, pseudonyms)
        elif _is_identifier(element):
            if isinstance(element.value, MultiValue):
                element.value = [pseudonyms.original(str(v)) or str(v) for v in element.value]
            else:
                element.value = pseudonyms.original(str(element.value)) or element.value


def _strings(ds: Dataset) -> Iterator[str]:
    """Yield every UID and text value of ``ds``, at any depth."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value:
                yield from _strings(item)
        elif element.VR in _TEXT and element.value:
            values = element.value if isinstance(element.value, MultiValue) else [element.value]
            yield from (str(v).strip() for v in values)


def reidentify(ds: Dataset, pseudonyms: Pseudonyms, context: Dataset) -> None:
    """Put a result made on the pseudonymised series back into the original study, in place.

    Every pseudonym UID (study, series, instances, frame of reference, at any
    depth) becomes its original; the patient and study modules become the
    original series' ``context`` (:attr:`~radbridge.iods.source.Series.context`);
    the de-identification marks go.

    Raises
    ------
    GatewayError
        A pseudonym is left in the result, e.g. in a text the model wrote
        (nothing pseudonymous is delivered).
    """
    _restore_uids(ds, pseudonyms)
    for keyword in CONTEXT_KEYWORDS:
        if keyword in ds:
            del ds[keyword]
    ds.update(copy.deepcopy(context))
    if "SOPInstanceUID" in ds and hasattr(ds, "file_meta"):
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    left = [value for value in _strings(ds) if pseudonyms.original(value) is not None]
    if left:
        raise GatewayError(
            f"{len(left)} pseudonymised UIDs are left in a re-identified result",
            attribute="pseudonyms",
        )
