"""The output-kind registry and :func:`encode_results`.

An *output kind* turns a model's result into one DICOM object: on a radiology
series ``seg``, ``sr``, ``ko``, ``sc``, ``pm``, ``rtstruct``, ``gsps``; on a
whole-slide image (:class:`radbridge.wsi.Slide`) ``slide-seg`` (a tiled SEG on the
result's level) and ``ann`` (Microscopy Bulk Simple Annotations). Each is an
:class:`OutputKind` — a name, an :class:`Output` subclass holding what that kind
may be told (``SegOutput(segmentation_type="labelmap")``), an ``encode(context,
output)`` function, and the source it encodes on (``"series"`` or ``"slide"``) —
kept in one registry keyed by name. :func:`encode_results` takes the plain inputs
(a :class:`~radbridge.Series` or a slide, a :class:`~radbridge.models.ModelResult`,
the outputs wanted, :class:`ResultOptions`), refuses kinds made for the other
source, resolves the segment descriptions once, and asks each kind in turn; a kind
sees the objects encoded before it (the SR refers to the SEG's segments).

Adding an output kind is one module and one registration: write the module with
an :class:`Output` subclass (``kind = "name"``) and an ``encode`` function, and
either add a line to :data:`_BUILTIN` (a kind shipped with radbridge, loaded
lazily) or call :func:`register_output` (a kind of your own)::

    @dataclass(frozen=True)
    class NoteOutput(Output):
        kind = "note"
        text: str = "seen by radbridge"

    def encode_note(context: ResultContext, output: NoteOutput) -> Dataset | None:
        ...  # build and return the object, or None to skip it (say why in the log)

    register_output(OutputKind("note", NoteOutput, encode_note))

A kind that encodes on slides says so: ``OutputKind("cells", CellsOutput,
encode_cells, source="slide")``; its encoder reads ``context.slide``.

The gateway's rule ``outputs``, ``radbridge batch`` rows and the CLI's encode
commands all go through this registry.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from numpy.typing import NDArray
from pydicom import Dataset

from radbridge.errors import ConfigError, EncodingError, GridMismatchError
from radbridge.geometry import Volume
from radbridge.iods.common import SeriesOptions
from radbridge.iods.content import default_colour
from radbridge.iods.source import Series, SeriesLike
from radbridge.models import ModelResult
from radbridge.results.equipment import add_contributing_equipment
from radbridge.results.numbering import compact_result, renumbering, whole_labels
from radbridge.seg import AlgorithmIdentification, SegmentDescription, describe_labels

if TYPE_CHECKING:
    from radbridge.wsi import Slide

__all__ = [
    "Output",
    "OutputKind",
    "ResultContext",
    "ResultOptions",
    "encode_results",
    "output_kind",
    "output_kinds",
    "register_output",
]


#: Output kinds shipped with radbridge: name -> module defining ``KIND`` (imported on first use).
_BUILTIN: dict[str, str] = {
    "seg": "radbridge.results.seg",
    "sr": "radbridge.results.sr",
    "ko": "radbridge.results.ko",
    "sc": "radbridge.results.sc",
    "pm": "radbridge.results.pm",
    "rtstruct": "radbridge.results.rtstruct",
    "gsps": "radbridge.results.gsps",
    "slide-seg": "radbridge.results.slide_seg",
    "ann": "radbridge.results.ann",
}

log = logging.getLogger(__name__)

_REGISTRY: dict[str, OutputKind] = {}
#: How a message names each kind of source.
_SOURCE_NAMES = {"series": "a radiology series", "slide": "a slide"}
_UNNAMED = ModelResult().algorithm  # a result no model made (e.g. a mask from a file)


@dataclass(frozen=True)
class Output:
    """What one output kind is told; subclasses add their fields and set ``kind``."""

    kind: ClassVar[str] = ""


@dataclass(frozen=True)
class ResultOptions:
    """Options every output shares.

    Parameters
    ----------
    series
        Series, instance and equipment attributes per output kind (fixed UIDs and
        time make re-runs byte-identical); a kind not named gets its encoder's
        defaults (new UIDs, the current time).
    profile
        The encoding profile (``interop``, ``slicer``, ``ohif``, ``pacs``,
        ``compact``) for the kinds that have one; ``None``: the default.
    """

    series: Mapping[str, SeriesOptions] = field(default_factory=dict)
    profile: str | None = None


@dataclass(eq=False)
class ResultContext:
    """What an output kind encodes from: the plain inputs and what was encoded before it.

    Attributes
    ----------
    source
        The source: a radiology series (context, geometry, instances; its volume
        on demand) or a whole-slide image; kinds read it as :attr:`series` or
        :attr:`slide`.
    result
        The model's result.
    options
        The options shared by all outputs.
    encoded
        The objects encoded so far in this call, by kind.
    """

    source: Series | Slide
    result: ModelResult
    options: ResultOptions = field(default_factory=ResultOptions)
    encoded: dict[str, Dataset] = field(default_factory=dict)

    @property
    def series(self) -> Series:
        """The source radiology series.

        Raises
        ------
        ConfigError
            The source is a slide.
        """
        if not isinstance(self.source, Series):
            raise _wrong_source("series")
        return self.source

    @property
    def slide(self) -> Slide:
        """The source whole-slide image.

        Raises
        ------
        ConfigError
            The source is a radiology series.
        """
        if isinstance(self.source, Series):
            raise _wrong_source("slide")
        return self.source

    @cached_property
    def algorithm(self) -> AlgorithmIdentification:
        """The result's algorithm, as the SEG and RTSTRUCT record it."""
        return AlgorithmIdentification(self.result.algorithm.name, self.result.algorithm.version)

    @cached_property
    def segments(self) -> tuple[SegmentDescription, ...]:
        """The result's segments, described once (codes, colours) for every output.

        A segment described without a colour gets the default one the overlays draw
        it in (:func:`~radbridge.iods.content.default_colour`), so the SEG recommends it too.
        """
        described = describe_labels(dict(self.result.segments), algorithm=self.algorithm)
        return tuple(
            d
            if d.display_rgb is not None
            else replace(d, display_rgb=default_colour(d.segment_number))
            for d in described
        )

    @cached_property
    def segment_numbers(self) -> dict[int, int]:
        """``{label: SEG segment number}`` when the labels have gaps, else ``{}``.

        A SEG numbers its segments 1..N; labels 1, 5, 7 become segments 1, 2, 3, as
        dcmqi numbers them (:mod:`radbridge.results.numbering`). The other kinds keep
        the label values (an RTSTRUCT's ROI Numbers are the labels).
        """
        mapping = renumbering(self.result.segments)
        moved = {label: number for label, number in mapping.items() if label != number}
        if moved:
            log.info(
                "labels %s are segments %s of the SEG (DICOM numbers segments 1..N)",
                list(moved),
                list(moved.values()),
            )
        return mapping

    @cached_property
    def numbered(self) -> ModelResult:
        """The result with its labels numbered as the SEG numbers its segments.

        The result itself when its labels are 1..N (see :attr:`segment_numbers`).

        Raises
        ------
        EncodingError
            The label map holds a value no segment describes, or the probabilities
            lack a described label's channel.
        """
        return compact_result(self.result, self.segment_numbers)

    @cached_property
    def labels(self) -> Volume | None:
        """The result's label map, as every kind reads it.

        Whole numbers stored as floats (a NIfTI read with ``get_fdata()``) become
        unsigned integers, so every kind takes the label map the ``seg`` takes;
        other values are left for the kind to refuse.
        """
        labels = self.result.labels
        if labels is None:
            return None
        array = np.asarray(labels.array)
        whole = whole_labels(array)
        return labels if whole is array else labels.with_array(whole)

    def labels_on_source(self, kind: str) -> NDArray[Any]:
        """Return the label map's array when it lies on the source's grid.

        For the kinds that draw on, or pick, the source's own images (``sc``, ``ko``).

        Raises
        ------
        EncodingError
            The result has no label map.
        GridMismatchError
            The label map lies on another grid (resampled, cropped, shifted): its
            voxels are not the source's pixels.
        """
        labels = self.labels
        if labels is None:
            raise EncodingError(
                f"the {kind} output needs the result's label map, and it has none",
                attribute="labels",
                hint=f"return labels= from the model, or leave {kind!r} out of the outputs",
            )
        if not labels.geometry.is_close(self.series.geometry, atol=1e-3):
            raise GridMismatchError(
                f"the result's label map lies on another grid than the source series, whose "
                f"images the {kind} output uses (shape {labels.shape} against "
                f"{self.series.geometry.shape}, or moved, rotated or in another frame of "
                "reference)",
                attribute="labels",
                hint="resample the label map onto the source series' grid (nearest neighbour), "
                f"e.g. as the model's input volume.with_array(...), or leave {kind!r} out",
            )
        return np.asarray(labels.array)

    def mask_or_labels(self, mask: Any, output: Output) -> Any | None:
        """Return ``mask`` (the mask ``output`` was given) when set, else the result's label map.

        None when there is neither (a model that returns probabilities alone): the
        kind is then skipped with a warning, as ``sc`` and ``pm`` are when their
        input is missing, and the other outputs are still encoded.
        """
        chosen = mask if mask is not None else self.labels
        if chosen is None:
            skipped(output.kind, "the result has no label map")
        return chosen

    def series_options(self, kind: str) -> SeriesOptions | None:
        """Return the series options given for ``kind`` (None: the encoder's defaults)."""
        return self.options.series.get(kind)

    def image_volume(self) -> Volume:
        """Return the source images (Modality LUT applied), decoded once by the series.

        Raises
        ------
        MissingAttributeError
            The series was described from headers alone (no pixels to draw on).
        """
        return self.series.volume(rescale=True)


def skipped(kind: str, why: str) -> None:
    """Log that output kind ``kind`` is left out of the objects, and why (no patient data)."""
    log.warning("%s: the %s output is skipped", why, kind)


def _wrong_source(wanted: Literal["series", "slide"]) -> ConfigError:
    """Return the error of a kind that reads the source as ``wanted`` when it is the other."""
    actual = "slide" if wanted == "series" else "series"
    return ConfigError(
        f"this output kind encodes on {_SOURCE_NAMES[wanted]}, "
        f"but the source is {_SOURCE_NAMES[actual]}",
        attribute="outputs",
        hint="use " + ", ".join(output_kinds(source=actual)),
    )


#: Encodes one output; returns None when the result has nothing for it (logged).
Encoder = Callable[[ResultContext, Any], Dataset | None]


@dataclass(frozen=True)
class OutputKind:
    """A registered output kind.

    Parameters
    ----------
    name
        The key (``"seg"``, ``"sr"``, ...) used in ``outputs`` lists and gateway rules.
    output
        The :class:`Output` subclass it takes (``name`` alone means its defaults).
    encode
        ``encode(context, output)`` returns the object, or None to skip it.
    source
        What it encodes on: ``"series"`` (a radiology series, the default) or
        ``"slide"`` (a whole-slide image); :func:`encode_results` refuses a kind
        asked for on the other.
    """

    name: str
    output: type[Output]
    encode: Encoder
    source: Literal["series", "slide"] = "series"


def register_output(kind: OutputKind, *, replace: bool = False) -> None:
    """Register an output kind under its name.

    Raises
    ------
    ConfigError
        The name is taken (pass ``replace=True`` to override it).
    """
    if not replace and (kind.name in _REGISTRY or kind.name in _BUILTIN):
        raise ConfigError(
            f"an output kind named {kind.name!r} is already registered",
            attribute="name",
            hint="choose another name, or pass replace=True",
        )
    _REGISTRY[kind.name] = kind


def output_kinds(*, source: str | None = None) -> tuple[str, ...]:
    """Return the names of every output kind (built-in and registered).

    With ``source`` (``"series"`` or ``"slide"``) only the kinds that encode on it.

    Examples
    --------
    >>> output_kinds(source="slide")
    ('slide-seg', 'ann')
    """
    names = tuple(dict.fromkeys([*_BUILTIN, *_REGISTRY]))
    if source is None:
        return names
    return tuple(name for name in names if output_kind(name).source == source)


def output_kind(name: str) -> OutputKind:
    """Return the output kind registered as ``name``.

    Raises
    ------
    ConfigError
        No such kind (the message lists the known ones).
    """
    if name not in _REGISTRY and name in _BUILTIN:
        kind = importlib.import_module(_BUILTIN[name]).KIND
        assert isinstance(kind, OutputKind) and kind.name == name
        _REGISTRY.setdefault(name, kind)
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown output kind {name!r}",
            attribute="outputs",
            hint="use " + ", ".join(output_kinds()),
        )
    return _REGISTRY[name]


def _spec(item: str | Output) -> tuple[OutputKind, Output]:
    if isinstance(item, Output):
        kind = output_kind(item.kind)
        if not isinstance(item, kind.output):
            raise ConfigError(
                f"{type(item).__name__} is not the {item.kind} output's type",
                attribute="outputs",
            )
        return kind, item
    kind = output_kind(item)
    return kind, kind.output()


def _as_source(series: SeriesLike | Slide) -> Series | Slide:
    if isinstance(series, Series):
        return series
    from radbridge.wsi import Slide  # only here: a radiology encode never imports the family

    if isinstance(series, Slide):
        return series
    if isinstance(series, Volume):
        return Series.from_volume(series)
    return Series.from_datasets(list(series))


def encode_results(
    series: SeriesLike | Slide,
    result: ModelResult,
    outputs: Sequence[str | Output],
    options: ResultOptions | None = None,
) -> dict[str, Dataset]:
    """Encode a model's result as DICOM objects, one per requested output kind.

    Parameters
    ----------
    series
        The source series the objects derive from: a :class:`~radbridge.Series`
        (e.g. :func:`radbridge.io.series.read_series`), its data sets, or a
        ``Volume``. Headers suffice, except for outputs drawn on the images
        (``sc``), which decode them through ``series.volume()`` (once). Or a
        whole-slide image (:func:`radbridge.wsi.read_slide`) for the slide kinds
        (``slide-seg``, ``ann``), whose result has ``level`` set.
    result
        The model's result: masks, probabilities, segments, measurements, findings.
    outputs
        Output kinds in the order to encode them: names (``"seg"``) or
        :class:`Output` objects carrying that kind's settings
        (``SegOutput(segmentation_type="labelmap")``). A kind sees the objects
        encoded before it (``sr`` refers to the ``seg`` before it).
    options
        Shared options: series attributes and UIDs per kind, the profile.

    Returns
    -------
    dict
        ``{kind: data set}`` in the order encoded; a kind with nothing to encode
        (e.g. ``pm`` without probabilities) is left out, with a warning logged.
        Each names the result's algorithm (when it has one) in its Contributing
        Equipment Sequence (:mod:`radbridge.results.equipment`).

    Raises
    ------
    ConfigError
        An unknown kind, one requested twice, or one made for the other source (a
        radiology kind on a slide, a slide kind on a series).
    RadbridgeError
        An encoder refused the result (its own error, e.g. ``EncodingError``).

    Examples
    --------
    >>> import numpy as np
    >>> from radbridge.geometry import Volume
    >>> from radbridge.models import AlgorithmInfo, ModelResult
    >>> series = Series.from_volume(Volume(np.zeros((2, 8, 8)), np.eye(4), "1.2.3"))
    >>> labels = np.zeros((2, 8, 8), np.uint8)
    >>> labels[0, 2:5, 2:5] = 1
    >>> result = ModelResult(labels=Volume(labels, np.eye(4)), segments={1: "liver"},
    ...                      algorithm=AlgorithmInfo("demo", "1"))
    >>> objects = encode_results(series, result, ["seg", "sr"])
    >>> [(kind, str(ds.Modality)) for kind, ds in objects.items()]
    [('seg', 'SEG'), ('sr', 'SR')]
    """
    context = ResultContext(_as_source(series), result, options or ResultOptions())
    specs = [_spec(item) for item in outputs]
    names = [kind.name for kind, _ in specs]
    if len(set(names)) != len(names):
        raise ConfigError(f"an output kind is requested twice: {names}", attribute="outputs")
    _check_sources([kind for kind, _ in specs], context.source)
    named = result.algorithm != _UNNAMED  # a model made it: name it as Contributing Equipment
    for kind, spec in specs:
        dataset = kind.encode(context, spec)
        if dataset is None:
            continue
        if named:
            add_contributing_equipment(dataset, result.algorithm)
        context.encoded[kind.name] = dataset
    return dict(context.encoded)


def _check_sources(kinds: Sequence[OutputKind], source: Series | Slide) -> None:
    """Refuse, before anything is encoded, kinds made for the other source."""
    actual = "series" if isinstance(source, Series) else "slide"
    wrong = [kind.name for kind in kinds if kind.source != actual]
    if wrong:
        what = "a whole-slide image" if actual == "slide" else "a radiology series"
        raise ConfigError(
            f"output kinds {wrong} do not encode on {what}",
            attribute="outputs",
            hint="on " + what + " use " + ", ".join(output_kinds(source=actual)),
        )
