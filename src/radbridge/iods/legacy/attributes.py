"""Where each attribute of the classic images goes in the converted image.

A Legacy Converted Enhanced image keeps every attribute of the images it was made
from (PS3.3 C.7.6.16.2.25): patient, study, series, frame of reference and equipment
attributes stay at the top level; geometry, rescale, window, references and image
type become functional groups (the writer's job); everything else is *unassigned*:
into the Unassigned Shared Converted Attributes when all images agree, into each
frame's Unassigned Per-Frame Converted Attributes when they differ.

Three kinds of attribute are not carried over, by choice: private attributes (their
meaning is the vendor's, and they often hold identifying data), repeating-group
overlays and curves (no place for them in the enhanced image), and icons.

Examples
--------
>>> from pydicom import Dataset
>>> a, b = Dataset(), Dataset()
>>> a.PatientID = b.PatientID = "P1"
>>> a.KVP, b.KVP = "120", "120"
>>> a.SliceLocation, b.SliceLocation = "1", "2"
>>> split = split_attributes([a, b], ["a.dcm", "b.dcm"], contrast=True)
>>> split.top.PatientID, split.shared.KVP, [f.SliceLocation for f in split.per_frame]
('P1', '120', ['1', '2'])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from radbridge.errors import MixedSeriesError

__all__ = ["ASSIGNED", "IDENTITY", "TOP_LEVEL", "Split", "split_attributes"]


def _words(text: str) -> list[str]:
    return text.split()


#: Attributes kept at the top level (Patient, Study, Series, Frame of Reference,
#: Equipment, Contrast/Bolus, SOP Common) when every image has the same value.
TOP_LEVEL = frozenset(
    _words(
        """
    PatientName PatientID IssuerOfPatientID TypeOfPatientID IssuerOfPatientIDQualifiersSequence
    PatientBirthDate PatientBirthTime PatientSex OtherPatientIDsSequence OtherPatientNames
    EthnicGroup PatientComments PatientSpeciesDescription PatientSpeciesCodeSequence
    PatientBreedDescription PatientBreedCodeSequence BreedRegistrationSequence
    ResponsiblePerson ResponsiblePersonRole ResponsibleOrganization PatientIdentityRemoved
    DeidentificationMethod DeidentificationMethodCodeSequence QualityControlSubject
    ClinicalTrialSponsorName ClinicalTrialProtocolID ClinicalTrialProtocolName
    ClinicalTrialSiteID ClinicalTrialSiteName ClinicalTrialSubjectID
    ClinicalTrialSubjectReadingID ClinicalTrialTimePointID ClinicalTrialTimePointDescription
    ClinicalTrialCoordinatingCenterName ClinicalTrialSeriesID ClinicalTrialSeriesDescription
    StudyInstanceUID StudyDate StudyTime ReferringPhysicianName
    ReferringPhysicianIdentificationSequence StudyID AccessionNumber
    IssuerOfAccessionNumberSequence StudyDescription PhysiciansOfRecord
    NameOfPhysiciansReadingStudy RequestingPhysician ReferencedStudySequence
    ProcedureCodeSequence AdmittingDiagnosesDescription PatientAge PatientSize PatientWeight
    Occupation AdditionalPatientHistory PregnancyStatus SmokingStatus
    Modality Laterality PerformingPhysicianName ProtocolName OperatorsName BodyPartExamined
    PatientPosition RequestAttributesSequence PerformedProcedureStepID
    PerformedProcedureStepStartDate PerformedProcedureStepStartTime
    PerformedProcedureStepDescription PerformedProtocolCodeSequence
    ReferencedPerformedProcedureStepSequence AnatomicalOrientationType
    FrameOfReferenceUID PositionReferenceIndicator
    Manufacturer InstitutionName InstitutionAddress StationName InstitutionalDepartmentName
    ManufacturerModelName DeviceSerialNumber SoftwareVersions GantryID SpatialResolution
    DateOfLastCalibration TimeOfLastCalibration PixelPaddingValue
    AcquisitionNumber BurnedInAnnotation RecognizableVisualFeatures
    SpecificCharacterSet TimezoneOffsetFromUTC
    """
    )
)

#: Contrast/Bolus Module attributes (top level in the CT and MR images, not in PET).
CONTRAST = frozenset(
    _words(
        """
    ContrastBolusAgent ContrastBolusAgentSequence ContrastBolusRoute ContrastBolusVolume
    ContrastBolusStartTime ContrastBolusStopTime ContrastBolusTotalDose ContrastFlowRate
    ContrastFlowDuration ContrastBolusIngredient ContrastBolusIngredientConcentration
    """
    )
)

#: Attributes that must agree across the images (one patient, study, frame of
#: reference, character set and modality per converted image).
IDENTITY = frozenset(
    _words(
        """
    PatientID PatientName StudyInstanceUID FrameOfReferenceUID SpecificCharacterSet
    Modality SOPClassUID
    """
    )
)

#: Attributes the writer places itself (functional groups, pixel data, new identity).
ASSIGNED = frozenset(
    _words(
        """
    SOPClassUID SOPInstanceUID InstanceNumber InstanceCreationDate InstanceCreationTime
    InstanceCreatorUID SeriesInstanceUID SeriesNumber SeriesDescription SeriesDate SeriesTime
    ContentDate ContentTime Rows Columns BitsAllocated BitsStored HighBit PixelRepresentation
    SamplesPerPixel PhotometricInterpretation PlanarConfiguration PixelData
    SmallestImagePixelValue LargestImagePixelValue SmallestPixelValueInSeries
    LargestPixelValueInSeries NumberOfFrames ImagePositionPatient ImageOrientationPatient
    PixelSpacing SliceThickness SpacingBetweenSlices RescaleIntercept RescaleSlope RescaleType
    WindowCenter WindowWidth WindowCenterWidthExplanation VOILUTFunction
    ReferencedImageSequence SourceImageSequence DerivationDescription DerivationCodeSequence
    AnatomicRegionSequence ImageType AcquisitionDateTime AcquisitionDate AcquisitionTime
    IconImageSequence LossyImageCompression LossyImageCompressionRatio
    LossyImageCompressionMethod PresentationLUTShape ContentQualification
    """
    )
)


@dataclass(frozen=True)
class Split:
    """The classic images' attributes, sorted into their places.

    Attributes
    ----------
    top
        Top-level attributes (identical in every image).
    shared
        Unassigned attributes identical in every image.
    per_frame
        Each image's unassigned attributes that differ between images.
    """

    top: Dataset
    shared: Dataset
    per_frame: tuple[Dataset, ...]


def _carried(element: DataElement) -> bool:
    tag = element.tag
    group = tag.group
    if tag.is_private or tag.element == 0 or group in (0x0002, 0xFFFE):
        return False
    return not (0x5000 <= group <= 0x50FF or 0x6000 <= group <= 0x60FF)


def split_attributes(datasets: Sequence[Dataset], names: Sequence[str], *, contrast: bool) -> Split:
    """Sort the attributes of ``datasets`` (one per frame, in frame order).

    Parameters
    ----------
    datasets
        The classic images, in the order of the converted frames.
    names
        A name for each image in messages (its file).
    contrast
        Whether the Contrast/Bolus Module is part of the converted image (CT, MR).

    Raises
    ------
    MixedSeriesError
        An identity attribute (patient, study, frame of reference, character set,
        modality, SOP class) differs between the images.
    """
    top_level = TOP_LEVEL | CONTRAST if contrast else TOP_LEVEL
    values: dict[int, list[DataElement | None]] = {}
    for index, ds in enumerate(datasets):
        for element in ds:
            if _carried(element):
                values.setdefault(int(element.tag), [None] * len(datasets))[index] = element
    top, shared = Dataset(), Dataset()
    per_frame = tuple(Dataset() for _ in datasets)
    for tag, elements in sorted(values.items()):
        keyword = keyword_for_tag(tag)
        first = elements[0]
        same = first is not None and all(_equal(first, other) for other in elements[1:])
        if keyword in IDENTITY and not same:
            _refuse(keyword, elements, names)
        if keyword in ASSIGNED:
            continue
        if same and first is not None:
            (top if keyword in top_level else shared).add(copy.deepcopy(first))
            continue
        for frame, found in zip(per_frame, elements, strict=True):
            if found is not None:
                frame.add(copy.deepcopy(found))
    return Split(top, shared, per_frame)


def _equal(a: DataElement, b: DataElement | None) -> bool:
    return b is not None and a.VR == b.VR and a.value == b.value


def _refuse(keyword: str, elements: Sequence[DataElement | None], names: Sequence[str]) -> None:
    first = elements[0]
    index = next(
        i for i, e in enumerate(elements) if first is None or e is None or not _equal(first, e)
    )
    raise MixedSeriesError(
        f"{keyword} differs between {names[0]} and {names[index]} (or is missing in one)",
        path=names[index],
        attribute=keyword,
        hint="one converted image holds one patient, study, frame of reference and kind of "
        "image: convert each series (and each frame of reference) on its own",
    )
