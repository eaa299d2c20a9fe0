"""The modules of an RT Structure Set instance, built from ROIs and their contours.

RT Series, Frame of Reference, Structure Set, ROI Contour, RT ROI
Observations and Approval (PS3.3 A.19). Contour items arrive ready-made from
:mod:`radbridge.iods.rtstruct.writer`; this module adds what surrounds them.

The Common Instance Reference Module is left out: the source images are
referenced by the Structure Set Module itself, and dciodvfy reports its
Referenced Series Sequence as an error when nothing else references instances
(a SEG named in a Definition Source Sequence does not count for it).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom.dataset import Dataset

from radbridge.iods.common import SeriesOptions, new_instance
from radbridge.iods.content import default_colour
from radbridge.iods.rtstruct.types import (
    RT_STRUCTURE_SET_STORAGE,
    ROIDescription,
    RTROIInterpretedType,
)
from radbridge.iods.source import Series, instance_references, sop_reference, write_context

__all__ = ["DETACHED_STUDY_MANAGEMENT", "build_structure_set"]

#: Used in RT Referenced Study Sequence items, as PS3.3 10.6.1 allows.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
#: new_instance() attributes that belong to no module of the RT Structure Set IOD.
_NOT_IN_IOD = (
    "ContentDate",
    "ContentTime",
    "ContentLabel",
    "ContentDescription",
    "ContentCreatorName",
)


def _colour(roi: ROIDescription) -> list[int]:
    # the SEG palette's, GSPS's and the overlays' colour of the same number
    rgb = roi.display_rgb or default_colour(roi.roi_number)
    return [int(v) for v in rgb]


def _referenced_frame_of_reference(source: Series) -> Dataset:
    item = Dataset()
    item.FrameOfReferenceUID = source.frame_of_reference_uid
    if source.slice_refs and source.series_instance_uid:
        series = Dataset()
        series.SeriesInstanceUID = source.series_instance_uid
        series.ContourImageSequence = instance_references(source)
        study = Dataset()
        study.ReferencedSOPClassUID = DETACHED_STUDY_MANAGEMENT
        study.ReferencedSOPInstanceUID = source.study_instance_uid
        study.RTReferencedSeriesSequence = [series]
        item.RTReferencedStudySequence = [study]
    return item


def _structure_set_roi(
    roi: ROIDescription, frame_of_reference_uid: str, derived_from: Dataset | None
) -> Dataset:
    item = Dataset()
    item.ROINumber = roi.roi_number
    item.ReferencedFrameOfReferenceUID = frame_of_reference_uid
    item.ROIName = roi.name
    if roi.description:
        item.ROIDescription = roi.description
    item.ROIGenerationAlgorithm = str(roi.generation_algorithm)
    if roi.algorithm is not None:
        item.ROIDerivationAlgorithmIdentificationSequence = [roi.algorithm.to_dataset()]
    if derived_from is not None and roi.segment is not None:
        source = sop_reference(derived_from.SOPClassUID, derived_from.SOPInstanceUID)
        source.ReferencedSegmentNumber = roi.segment.segment_number
        item.DefinitionSourceSequence = [source]
    return item


def _observation(roi: ROIDescription) -> Dataset:
    item = Dataset()
    item.ObservationNumber = roi.roi_number
    item.ReferencedROINumber = roi.roi_number
    if roi.observation_label:
        item.ROIObservationLabel = roi.observation_label
    segment = roi.segment
    if segment is not None:
        # Both code sequences are Type 3 here: a segment read without codes gets none.
        if segment.category is not None:
            item.SegmentedPropertyCategoryCodeSequence = [segment.category.to_dataset()]
        identification, region = segment.type_item(), segment.region_item()
        if identification is not None:
            item.RTROIIdentificationCodeSequence = [identification]
        if region is not None:
            item.AnatomicRegionSequence = [region]
    item.RTROIInterpretedType = RTROIInterpretedType(roi.interpreted_type).value
    item.ROIInterpreter = ""
    return item


def build_structure_set(
    source: Series,
    rois: Sequence[tuple[ROIDescription, list[Dataset]]],
    series: SeriesOptions,
    label: str,
    derived_from: Dataset | None,
) -> Dataset:
    """Assemble the RT Structure Set data set (without file meta)."""
    ds = new_instance(RT_STRUCTURE_SET_STORAGE, series, modality="RTSTRUCT")
    for keyword in _NOT_IN_IOD:
        if keyword in ds:
            del ds[keyword]
    write_context(ds, source.context)
    ds.OperatorsName = ""
    frame_of_reference = str(source.frame_of_reference_uid)
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.StructureSetLabel = label
    ds.StructureSetDate, ds.StructureSetTime = ds.SeriesDate, ds.SeriesTime
    ds.ReferencedFrameOfReferenceSequence = [_referenced_frame_of_reference(source)]
    ds.StructureSetROISequence = [
        _structure_set_roi(roi, frame_of_reference, derived_from) for roi, _ in rois
    ]
    contours = []
    for roi, items in rois:
        item = Dataset()
        item.ROIDisplayColor = _colour(roi)
        if items:
            item.ContourSequence = items
        item.ReferencedROINumber = roi.roi_number
        contours.append(item)
    ds.ROIContourSequence = contours
    ds.RTROIObservationsSequence = [_observation(roi) for roi, _ in rois]
    ds.ApprovalStatus = "UNAPPROVED"
    return ds
