"""One image series: its plan, patient/study context, instances and (lazily) its volume.

Every derived object (SEG, SR, PM, RTSTRUCT, KOS, SC) copies the patient and
study context from its source images and references them; a model needs the
pixels. :class:`Series` gathers the context, the slice plan and the instance
references once from the headers, and decodes the pixels only when
:meth:`Series.volume` is first called (through the pixel layer, compressed
slices in parallel), so a folder is scanned and planned once
(:func:`radbridge.io.series.read_series`). ``SourceSeries`` is its former name.

Examples
--------
>>> from pydicom import examples
>>> series = Series.from_datasets([examples.ct])
>>> series.modality, series.geometry.shape
('CT', (1, 128, 128))
>>> series.context.StudyInstanceUID == examples.ct.StudyInstanceUID
True
>>> series.volume(rescale=True).array.dtype
dtype('int16')
"""

from __future__ import annotations

import copy
import functools
import logging
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from radbridge.attributes import text_value
from radbridge.errors import MissingAttributeError
from radbridge.geometry import SeriesPlan, SliceRef, Volume, VolumeGeometry, plan_series
from radbridge.geometry.series import volume_from_plan
from radbridge.geometry.volume import FloatArray
from radbridge.iods.display import SliceDisplay, slice_display
from radbridge.uids import new_uid

__all__ = [
    "CONTEXT_KEYWORDS",
    "Series",
    "SeriesLike",
    "SourceSeries",
    "as_series",
    "copy_context",
    "drop_empty_character_set",
    "evidence_by_study",
    "evidence_sequence",
    "image_reference",
    "instance_references",
    "referenced_series_sequence",
    "resolve_source",
    "sop_reference",
    "source_given_first",
    "write_context",
]

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

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
class Series:
    """One image series, read once: what derived objects and models need of it.

    Build it with :meth:`from_datasets` (headers suffice), :meth:`from_volume`, or
    :func:`radbridge.io.series.read_series` (a folder: scanned and planned once,
    pixels read by the first :meth:`volume` call).

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
    lossy_ratios, lossy_methods
        The source images' Lossy Image Compression Ratio and Method values, in the
        order first met (derived objects copy them, PS3.3 C.7.6.1.1.5).
    acquired_positions
        Actual slice positions when the source had non-uniform spacing.
    body_part_examined
        The source's Body Part Examined (e.g. ``CHEST``), or ``""``.
    display
        How each slice is displayed (Modality LUT, window, polarity), in slice order;
        empty when the series was not built from its data sets.
    plan
        Where each slice comes from (data set and frame), when built from data sets.
    sources
        Names of the data sets for messages (file paths when read from a folder).
    """

    context: Dataset
    geometry: VolumeGeometry
    slice_refs: tuple[SliceRef, ...]
    series_instance_uid: str | None
    modality: str
    lossy: bool = False
    acquired_positions: FloatArray | None = None
    lossy_ratios: tuple[str, ...] = ()
    lossy_methods: tuple[str, ...] = ()
    body_part_examined: str = ""
    display: tuple[SliceDisplay, ...] = field(default=(), repr=False)
    plan: SeriesPlan | None = field(default=None, repr=False)
    sources: tuple[str, ...] = field(default=(), repr=False)
    _load: Callable[[], Sequence[Dataset]] | None = field(default=None, repr=False)
    _volumes: dict[bool, Volume] = field(default_factory=dict, repr=False)

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

    def volume(self, *, rescale: bool = False, workers: int | None = None) -> Volume:
        """Return the series as a volume, decoding its pixels on the first call.

        Parameters
        ----------
        rescale
            Apply the Modality LUT (HU for CT), as :func:`radbridge.io.series.read_volume`.
        workers
            Processes for decoding compressed slices (default: the usable CPUs, when
            the work pays for them).

        Raises
        ------
        MissingAttributeError
            The series was built from headers alone, with nothing to read pixels from.
        DecodingError
            A slice cannot be decoded (names the file).
        """
        cached = self._volumes.get(rescale)
        if cached is not None:
            return cached
        if self.plan is None or self._load is None:
            raise MissingAttributeError(
                "this series was described from headers alone; it has no pixels to read",
                attribute="PixelData",
                hint="read the folder with radbridge.io.series.read_series, or build the "
                "Series from data sets read with their pixel data",
            )
        datasets = self._load()
        log.info("reading series %s: %d instances", self.series_instance_uid, len(datasets))
        volume = volume_from_plan(
            self.plan, datasets, rescale=rescale, sources=self.sources or None, workers=workers
        )
        self._volumes.clear()  # keep one decoded volume, not one per rescale choice
        self._volumes[rescale] = volume
        return volume

    @classmethod
    def from_datasets(
        cls,
        datasets: Sequence[Dataset],
        *,
        sources: Sequence[str] | None = None,
        allow_nonuniform_spacing: bool = False,
        spacing_tolerance: float = 0.01,
        load: Callable[[], Sequence[Dataset]] | None = None,
    ) -> Series:
        """Gather context, plan and references from the images (headers suffice).

        Parameters
        ----------
        datasets
            Single-frame images of one series, or one multi-frame image.
        sources
            Names for messages, one per data set.
        allow_nonuniform_spacing, spacing_tolerance
            See :func:`radbridge.geometry.plan_stack`.
        load
            Returns the same data sets with their pixel data, for :meth:`volume`
            (default: ``datasets`` themselves when they hold pixel data).
        """
        datasets = list(datasets)
        plan = plan_series(
            datasets,
            sources=sources,
            spacing_tolerance=spacing_tolerance,
            allow_nonuniform_spacing=allow_nonuniform_spacing,
        )
        first = datasets[0]
        if not first.get("StudyInstanceUID"):
            raise MissingAttributeError(
                "source image has no study",
                path=sources[0] if sources else getattr(first, "filename", None),
                attribute="StudyInstanceUID",
                hint="the source file is damaged",
            )
        context = copy_context(first)
        lossy = any(str(ds.get("LossyImageCompression", "00")) == "01" for ds in datasets)
        if load is None and all(any(k in ds for k in _PIXEL_KEYWORDS) for ds in datasets):
            load = functools.partial(tuple, datasets)  # they hold their pixels (picklable)
        return cls(
            context=context,
            geometry=plan.stack.geometry,
            slice_refs=plan.slice_refs,
            series_instance_uid=text_value(first, "SeriesInstanceUID") or None,
            modality=text_value(first, "Modality"),
            lossy=lossy,
            acquired_positions=plan.stack.acquired_positions,
            lossy_ratios=_gathered(datasets, "LossyImageCompressionRatio") if lossy else (),
            lossy_methods=_gathered(datasets, "LossyImageCompressionMethod") if lossy else (),
            body_part_examined=text_value(first, "BodyPartExamined"),
            display=tuple(slice_display(datasets[d], f) for d, f in plan.slice_locations),
            plan=plan,
            sources=tuple(sources or ()),
            _load=load,
        )

    @classmethod
    def from_volume(cls, volume: Volume, *, context: Dataset | None = None) -> Series:
        """Describe a volume that was not read with its data sets (e.g. from NIfTI).

        Without ``context`` the derived object goes into a *new* study with empty
        patient attributes (a warning is logged): pass the source's data sets
        instead to keep it in the source study. :meth:`volume` returns ``volume``.
        """
        if context is None:
            log.warning(
                "no source context given: the derived object goes into a new study "
                "without patient attributes"
            )
            context = Dataset()
            context.StudyInstanceUID = new_uid()
        copied = copy_context(context)
        if not copied.get("StudyInstanceUID"):
            copied.StudyInstanceUID = new_uid()
        return cls(
            context=copied,
            geometry=volume.geometry,
            slice_refs=volume.slice_refs,
            series_instance_uid=None,
            modality=text_value(context, "Modality"),
            acquired_positions=volume.acquired_positions,
            body_part_examined=text_value(context, "BodyPartExamined"),
            _volumes={False: volume, True: volume},
        )


def write_lossy_compression(ds: Dataset, source: Series) -> None:
    """Say in ``ds`` whether its source was lossy compressed, with the source's ratios and methods.

    Lossy Image Compression is ``"01"`` when any source image was, and then its Ratio
    and Method values are copied (Type 1C in the Segmentation and Parametric Map
    image modules, PS3.3 C.8.20.2 and C.8.32.1: required when the sources have them).

    Examples
    --------
    >>> from radbridge.geometry import Volume
    >>> import numpy as np
    >>> ds = Dataset()
    >>> write_lossy_compression(ds, Series.from_volume(Volume(np.zeros((1, 2, 2)), np.eye(4)),
    ...                                                 context=ds))
    >>> ds.LossyImageCompression
    '00'
    """
    ds.LossyImageCompression = "01" if source.lossy else "00"
    if source.lossy and source.lossy_ratios:
        ds.LossyImageCompressionRatio = list(source.lossy_ratios)
    if source.lossy and source.lossy_methods:
        ds.LossyImageCompressionMethod = list(source.lossy_methods)


def _gathered(datasets: Sequence[Dataset], keyword: str) -> tuple[str, ...]:
    """Return the values of ``keyword`` over ``datasets``, each once, in the order first met."""
    found: dict[str, None] = {}
    for ds in datasets:
        value = ds.get(keyword)
        values = value if isinstance(value, MultiValue | list) else [value]
        found.update((str(v).strip(), None) for v in values if v not in (None, ""))
    return tuple(found)


#: The former name of :class:`Series`.
SourceSeries = Series

#: What the object writers accept as their source: a Series, its data sets, or a Volume.
SeriesLike = Series | Sequence[Dataset] | Volume


def copy_context(ds: Dataset) -> Dataset:
    """Return a copy of the patient and study attributes of ``ds`` (:data:`CONTEXT_KEYWORDS`).

    The elements are copies: changing the context (or an object made from it) leaves
    ``ds`` as it was.
    """
    context = Dataset()
    for keyword in CONTEXT_KEYWORDS:
        if keyword in ds and (ds[keyword].value not in (None, "", []) or keyword in _TYPE2_CONTEXT):
            context[keyword] = copy.deepcopy(ds[keyword])
    for keyword in _TYPE2_CONTEXT:
        if keyword not in context:
            setattr(context, keyword, "")
    return context


def write_context(ds: Dataset, context: Dataset) -> None:
    """Put copies of the source's patient and study attributes (``context``) into ``ds``.

    Copies, so that editing the new object (say, its Patient Name) leaves the source
    series as it was. An empty Specific Character Set is left out: it means the
    default repertoire, and the attribute (Type 1C) may not be written empty.

    Examples
    --------
    >>> from pydicom import examples
    >>> series = Series.from_datasets([examples.ct])
    >>> made = Dataset()
    >>> write_context(made, series.context)
    >>> made.PatientName = "Anonymous"
    >>> str(series.context.PatientName) != "Anonymous"
    True
    """
    for element in context:
        ds.add(copy.deepcopy(element))
    drop_empty_character_set(ds)


def drop_empty_character_set(ds: Dataset) -> None:
    """Remove an empty Specific Character Set: it means the default repertoire.

    The attribute is Type 1C (SOP Common): present only with a value, and some
    sources write it empty, which dciodvfy counts as an error in what radbridge writes.

    Examples
    --------
    >>> ds = Dataset()
    >>> ds.SpecificCharacterSet = ""
    >>> drop_empty_character_set(ds)
    >>> "SpecificCharacterSet" in ds
    False
    """
    if "SpecificCharacterSet" in ds and not ds.SpecificCharacterSet:
        del ds.SpecificCharacterSet


def as_series(source: SeriesLike) -> Series:
    """Return ``source`` as a :class:`Series`: itself, or one made from a volume or data sets.

    Unlike :func:`resolve_source`, a frame of reference is not required (a Key
    Object Selection or a Secondary Capture needs none).

    Examples
    --------
    >>> from pydicom import examples
    >>> series = Series.from_datasets([examples.ct])
    >>> as_series(series) is series, as_series([examples.ct]).modality
    (True, 'CT')
    """
    if isinstance(source, Series):
        return source
    if isinstance(source, Volume):
        return Series.from_volume(source)
    return Series.from_datasets(list(source))


def source_given_first(function: str, content: object) -> bool:
    """Tell whether a caller gave an encoder ``(source, content)`` instead of ``(content, source)``.

    Every encoder takes what it encodes first and the source series second.
    :func:`~radbridge.ko.encode_key_objects`, :func:`~radbridge.sc.encode_overlay_sc`
    and :func:`~radbridge.pr.encode_presentation_state` took the source first in
    earlier development versions; that order still works, with a
    :class:`DeprecationWarning`, until a later release removes it. It is recognised
    by a source in the first place (a :class:`Series`, a volume or data sets),
    where the content cannot be one.

    Examples
    --------
    >>> from pydicom import examples
    >>> series = Series.from_datasets([examples.ct])
    >>> source_given_first("encode_key_objects", ["1.2.3"]), source_given_first("f", [examples.ct])
    (False, True)
    """
    given_first = isinstance(content, Series | Volume) or (
        isinstance(content, Sequence) and bool(content) and isinstance(content[0], Dataset)
    )
    if not given_first:
        return False
    warnings.warn(
        f"{function}(source, ...) is deprecated: pass what is encoded first and the source "
        "series second, as every radbridge encoder takes them",
        DeprecationWarning,
        stacklevel=3,
    )
    return True


def resolve_source(source: SeriesLike, *, consequence: str, hint: str) -> Series:
    """Return ``source`` as a :class:`Series` that has a frame of reference.

    ``consequence`` ends the error message ("the source series has no frame of
    reference, so <consequence>"); ``hint`` says what to do.
    """
    resolved = as_series(source)
    if not resolved.frame_of_reference_uid:
        raise MissingAttributeError(
            f"the source series has no frame of reference, so {consequence}",
            attribute="FrameOfReferenceUID",
            hint=hint,
        )
    return resolved


def sop_reference(sop_class_uid: str, sop_instance_uid: str) -> Dataset:
    """Return an item with Referenced SOP Class UID and Referenced SOP Instance UID.

    Examples
    --------
    >>> item = sop_reference("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4")
    >>> item.ReferencedSOPClassUID.name, item.ReferencedSOPInstanceUID
    ('CT Image Storage', '1.2.3.4')
    """
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = sop_instance_uid
    return item


def instance_references(source: Series) -> list[Dataset]:
    """One :func:`sop_reference` per instance of ``source`` (once each, in slice order)."""
    instances: dict[str, str] = {}
    for ref in source.slice_refs:
        instances.setdefault(ref.sop_instance_uid, ref.sop_class_uid)
    return [sop_reference(sop_class, sop) for sop, sop_class in instances.items()]


def image_reference(ref: SliceRef) -> Dataset:
    """Return one image reference item: :func:`sop_reference` and the frame, if any."""
    item = sop_reference(ref.sop_class_uid, ref.sop_instance_uid)
    if ref.frame_number is not None:
        item.ReferencedFrameNumber = ref.frame_number
    return item


def referenced_series_sequence(source: Series) -> list[Dataset]:
    """Items of Referenced Series Sequence (Common Instance Reference Module)."""
    if not source.slice_refs or not source.series_instance_uid:
        return []
    series = Dataset()
    series.ReferencedInstanceSequence = instance_references(source)
    series.SeriesInstanceUID = source.series_instance_uid
    return [series]


def positions_close(a: FloatArray, b: FloatArray, tolerance: float = 1e-3) -> bool:
    """Tell whether two position arrays agree within ``tolerance`` mm."""
    return a.shape == b.shape and bool(np.allclose(a, b, atol=tolerance, rtol=0))


def evidence_sequence(study_uid: str, references: Iterable[tuple[str, str, str]]) -> list[Dataset]:
    """Return Hierarchical SOP Instance Reference items of one study.

    The items of an evidence sequence (PS3.3 Table 10-4): the study, its series, and
    each series' instances, from (series UID, SOP Class UID, SOP Instance UID) triples.
    An instance named twice is listed once; no references give no items.

    Examples
    --------
    >>> ct = "1.2.840.10008.5.1.4.1.1.2"
    >>> [study] = evidence_sequence("1.2", [("1.2.3", ct, "1.2.3.1"), ("1.2.3", ct, "1.2.3.2")])
    >>> [series] = study.ReferencedSeriesSequence
    >>> series.SeriesInstanceUID, len(series.ReferencedSOPSequence)
    ('1.2.3', 2)
    """
    by_series: dict[str, dict[str, str]] = defaultdict(dict)
    for series, sop_class, sop in references:
        by_series[series][sop] = sop_class
    if not by_series:
        return []
    study = Dataset()
    study.StudyInstanceUID = study_uid
    study.ReferencedSeriesSequence = []
    for series_uid, instances in by_series.items():
        item = Dataset()
        item.SeriesInstanceUID = series_uid
        item.ReferencedSOPSequence = [
            sop_reference(sop_class, sop) for sop, sop_class in instances.items()
        ]
        study.ReferencedSeriesSequence.append(item)
    return [study]


def evidence_by_study(references: Iterable[tuple[str, str, str, str]]) -> list[Dataset]:
    """Return evidence items, one per study, for (study, series, class, SOP) references.

    Examples
    --------
    >>> mr = "1.2.840.10008.5.1.4.1.1.4"
    >>> refs = [("1.1", "1.1.1", mr, "1.1.1.1"), ("1.2", "1.2.1", mr, "1.2.1.1")]
    >>> items = evidence_by_study(refs)
    >>> [str(item.StudyInstanceUID) for item in items]
    ['1.1', '1.2']
    """
    by_study: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for study, series, sop_class, sop in references:
        by_study[study].append((series, sop_class, sop))
    return [item for study, refs in by_study.items() for item in evidence_sequence(study, refs)]
