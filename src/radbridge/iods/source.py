"""The source series a derived object refers to: its context, geometry and instances.

Every derived object (SEG, SR, PM, RTSTRUCT, KOS, SC) copies the patient and
study context from its source images and references them. :class:`SourceSeries`
gathers that once from the source data sets (headers are enough).

Examples
--------
>>> from pydicom import examples
>>> src = SourceSeries.from_datasets([examples.ct])
>>> src.modality, src.geometry.shape
('CT', (1, 128, 128))
>>> src.context.StudyInstanceUID == examples.ct.StudyInstanceUID
True
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydicom.dataset import Dataset

from radbridge.errors import MissingAttributeError
from radbridge.geometry import SliceRef, Volume, VolumeGeometry, plan_series
from radbridge.geometry.volume import FloatArray
from radbridge.uids import new_uid

__all__ = ["CONTEXT_KEYWORDS", "SourceSeries", "referenced_series_sequence"]

log = logging.getLogger(__name__)

#: Attributes copied from the source into every derived object: Patient, Clinical
#: Trial Subject, General Study, Patient Study and Clinical Trial Study modules.
CONTEXT_KEYWORDS: tuple[str, ...] = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "TypeOfPatientID",
    "OtherPatientIDsSequence",
    "PatientBirthDate",
    "PatientBirthTime",
    "PatientSex",
    "PatientSpeciesDescription",
    "PatientSpeciesCodeSequence",
    "PatientBreedDescription",
    "PatientBreedCodeSequence",
    "BreedRegistrationSequence",
    "ResponsiblePerson",
    "ResponsiblePersonRole",
    "ResponsibleOrganization",
    "PatientIdentityRemoved",
    "DeidentificationMethod",
    "DeidentificationMethodCodeSequence",
    "ClinicalTrialSponsorName",
    "ClinicalTrialProtocolID",
    "ClinicalTrialProtocolName",
    "ClinicalTrialSiteID",
    "ClinicalTrialSiteName",
    "ClinicalTrialSubjectID",
    "ClinicalTrialSubjectReadingID",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyDescription",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "ClinicalTrialTimePointID",
    "ClinicalTrialTimePointDescription",
)
_TYPE2_CONTEXT = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


@dataclass(frozen=True, eq=False)
class SourceSeries:
    """What a derived object needs to know about its source series.

    Attributes
    ----------
    context
        Patient/study attributes to copy (see :data:`CONTEXT_KEYWORDS`).
    geometry
        The source grid, slices ordered along the slice normal.
    slice_refs
        Source instance (and frame) of each slice; empty when unknown.
    series_instance_uid
        The source series, or ``None`` when unknown.
    modality
        The source modality.
    lossy
        Whether any source image was lossy compressed (``LossyImageCompression`` "01").
    acquired_positions
        Actual slice positions when the source had non-uniform spacing.
    body_part_examined
        The source's Body Part Examined (e.g. ``CHEST``), or ``""``.
    """

    context: Dataset
    geometry: VolumeGeometry
    slice_refs: tuple[SliceRef, ...]
    series_instance_uid: str | None
    modality: str
    lossy: bool = False
    acquired_positions: FloatArray | None = None
    body_part_examined: str = ""

    @property
    def frame_of_reference_uid(self) -> str | None:
        """Frame of Reference UID of the source grid."""
        return self.geometry.frame_of_reference_uid

    @property
    def study_instance_uid(self) -> str:
        """Study Instance UID derived objects go into."""
        return str(self.context.StudyInstanceUID)

    def slice_positions(self) -> FloatArray:
        """``ImagePositionPatient`` of each source slice (as acquired)."""
        if self.acquired_positions is not None:
            return self.acquired_positions
        return self.geometry.slice_positions

    @classmethod
    def from_datasets(
        cls,
        datasets: Sequence[Dataset],
        *,
        sources: Sequence[str] | None = None,
        allow_nonuniform_spacing: bool = False,
    ) -> SourceSeries:
        """Gather context and geometry from the source images (headers suffice).

        Parameters
        ----------
        datasets
            Single-frame images of one series, or one multi-frame image.
        sources
            Names for messages, one per data set.
        allow_nonuniform_spacing
            See :func:`radbridge.geometry.plan_stack`.
        """
        plan = plan_series(
            datasets, sources=sources, allow_nonuniform_spacing=allow_nonuniform_spacing
        )
        first = datasets[0]
        if not first.get("StudyInstanceUID"):
            raise MissingAttributeError(
                "source image has no study",
                path=sources[0] if sources else getattr(first, "filename", None),
                attribute="StudyInstanceUID",
                hint="the source file is damaged",
            )
        context = _copy_context(first)
        lossy = any(str(ds.get("LossyImageCompression", "00")) == "01" for ds in datasets)
        return cls(
            context=context,
            geometry=plan.stack.geometry,
            slice_refs=plan.slice_refs,
            series_instance_uid=str(first.get("SeriesInstanceUID", "") or "") or None,
            modality=str(first.get("Modality", "") or ""),
            lossy=lossy,
            acquired_positions=plan.stack.acquired_positions,
            body_part_examined=str(first.get("BodyPartExamined", "") or ""),
        )

    @classmethod
    def from_volume(cls, volume: Volume, *, context: Dataset | None = None) -> SourceSeries:
        """Describe a volume that was not read with its data sets (e.g. from NIfTI).

        Without ``context`` the derived object goes into a *new* study with empty
        patient attributes (a warning is logged): pass the source's data sets
        instead to keep it in the source study.
        """
        if context is None:
            log.warning(
                "no source context given: the derived object goes into a new study "
                "without patient attributes"
            )
            context = Dataset()
            context.StudyInstanceUID = new_uid()
        copied = _copy_context(context)
        if not copied.get("StudyInstanceUID"):
            copied.StudyInstanceUID = new_uid()
        return cls(
            context=copied,
            geometry=volume.geometry,
            slice_refs=volume.slice_refs,
            series_instance_uid=None,
            modality=str(context.get("Modality", "") or ""),
            acquired_positions=volume.acquired_positions,
            body_part_examined=str(context.get("BodyPartExamined", "") or ""),
        )


def _copy_context(ds: Dataset) -> Dataset:
    context = Dataset()
    for keyword in CONTEXT_KEYWORDS:
        if keyword in ds and (ds[keyword].value not in (None, "", []) or keyword in _TYPE2_CONTEXT):
            context[keyword] = ds[keyword]
    for keyword in _TYPE2_CONTEXT:
        if keyword not in context:
            setattr(context, keyword, "")
    return context


def resolve_source(
    source: SourceSeries | Sequence[Dataset] | Volume, *, consequence: str, hint: str
) -> SourceSeries:
    """Return ``source`` as a :class:`SourceSeries` that has a frame of reference.

    ``consequence`` ends the error message ("the source series has no frame of
    reference, so <consequence>"); ``hint`` says what to do.
    """
    if isinstance(source, SourceSeries):
        resolved = source
    elif isinstance(source, Volume):
        resolved = SourceSeries.from_volume(source)
    else:
        resolved = SourceSeries.from_datasets(list(source))
    if not resolved.frame_of_reference_uid:
        raise MissingAttributeError(
            f"the source series has no frame of reference, so {consequence}",
            attribute="FrameOfReferenceUID",
            hint=hint,
        )
    return resolved


def referenced_series_sequence(source: SourceSeries) -> list[Dataset]:
    """Items of Referenced Series Sequence (Common Instance Reference Module)."""
    if not source.slice_refs or not source.series_instance_uid:
        return []
    instances: dict[str, str] = {}
    for ref in source.slice_refs:
        instances.setdefault(ref.sop_instance_uid, ref.sop_class_uid)
    series = Dataset()
    series.ReferencedInstanceSequence = []
    for sop_instance, sop_class in instances.items():
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_instance
        series.ReferencedInstanceSequence.append(item)
    series.SeriesInstanceUID = source.series_instance_uid
    return [series]


def positions_close(a: FloatArray, b: FloatArray, tolerance: float = 1e-3) -> bool:
    """Tell whether two position arrays agree within ``tolerance`` mm."""
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tolerance, rtol=0))
