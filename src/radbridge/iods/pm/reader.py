"""Read DICOM Parametric Maps into volumes of real-world values.

The reader is tolerant: the Real World Value Mapping may sit in the shared or
the per-frame functional groups, give its value range as integers or doubles,
use a lookup table instead of slope and intercept, and name its quantity or
not. Float pixel padding values become NaN. It raises where meaning would be
lost: frames without positions, several frames at one position, a damaged
file.

Examples
--------
>>> import numpy as np
>>> from radbridge.coding import dcm
>>> from radbridge.io.phantom import generate_phantom
>>> from radbridge.iods.pm import encode_parametric_map
>>> from radbridge.iods.source import Series
>>> ph = generate_phantom(slices=4, size=16)
>>> values = np.linspace(0, 1, ph.hu.array.size, dtype=np.float32).reshape(ph.hu.shape)
>>> src = Series.from_volume(ph.hu)
>>> ds = encode_parametric_map(values, src, quantity=dcm("130402", "Class activation"),
...                            units="{probability}", anatomic_region="body")
>>> volume = read_parametric_map(ds, source=src)
>>> bool(np.array_equal(volume.array, values)), volume.array.dtype
(True, dtype('float32'))
>>> open_parametric_map(ds).mapping.units.value
'{probability}'
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from radbridge.attributes import floats_value, int_value
from radbridge.coding import Code
from radbridge.errors import (
    DecodingError,
    MissingAttributeError,
    RadbridgeError,
    UnsupportedObjectError,
)
from radbridge.geometry import Volume, VolumeGeometry
from radbridge.iods.common import ReadObject
from radbridge.iods.multiframe.fast_read import DicomFile
from radbridge.iods.multiframe.frame_index import FrameIndex, index_frames
from radbridge.iods.multiframe.functional_groups import damaged_groups
from radbridge.iods.multiframe.planes import FramePlanes
from radbridge.iods.pm.types import PARAMETRIC_MAP_STORAGE
from radbridge.iods.source import Series

__all__ = [
    "ParametricMap",
    "RealWorldValueMapping",
    "open_parametric_map",
    "read_parametric_map",
]

log = logging.getLogger(__name__)

_PER_FRAME = 0x52009230
_PADDING_KEYWORDS = (
    ("FloatPixelPaddingValue", "FloatPixelPaddingRangeLimit"),
    ("DoubleFloatPixelPaddingValue", "DoubleFloatPixelPaddingRangeLimit"),
)


@dataclass(frozen=True, eq=False)
class RealWorldValueMapping:
    """One item of the Real World Value Mapping Sequence.

    Attributes
    ----------
    units
        Measurement Units Code Sequence (UCUM), if present.
    quantity
        The Concept Code of the Quantity Definition item, if present.
    slope, intercept
        Real-world value = stored value * slope + intercept.
    first_value_mapped, last_value_mapped
        The stored value range the mapping covers.
    label, explanation
        LUT Label and LUT Explanation.
    lut
        Real World Value LUT Data, used instead of slope and intercept when given.
    """

    units: Code | None
    quantity: Code | None
    slope: float = 1.0
    intercept: float = 0.0
    first_value_mapped: float | None = None
    last_value_mapped: float | None = None
    label: str = ""
    explanation: str = ""
    lut: NDArray[np.float64] | None = None

    @property
    def is_identity(self) -> bool:
        """Whether real-world values equal the stored values."""
        return self.lut is None and self.slope == 1.0 and self.intercept == 0.0

    def apply(self, stored: NDArray[Any]) -> NDArray[Any]:
        """Return real-world values for ``stored`` (unchanged when the mapping is identity)."""
        if self.lut is not None:
            first = int(self.first_value_mapped or 0)
            index = np.clip(stored.astype(np.int64) - first, 0, len(self.lut) - 1)
            return self.lut[index]
        if self.is_identity:
            return stored
        return stored.astype(np.float64) * self.slope + self.intercept

    @classmethod
    def from_dataset(cls, item: Dataset, *, source: str | None = None) -> RealWorldValueMapping:
        """Read one mapping item (tolerating absent codes and either range encoding)."""
        units = _code(item, "MeasurementUnitsCodeSequence", source)
        quantity = None
        for definition in item.get("QuantityDefinitionSequence", []) or []:
            if definition.get("ConceptCodeSequence"):
                quantity = _code(definition, "ConceptCodeSequence", source)
                break
        first = _number(
            item, "DoubleFloatRealWorldValueFirstValueMapped", "RealWorldValueFirstValueMapped"
        )
        last = _number(
            item, "DoubleFloatRealWorldValueLastValueMapped", "RealWorldValueLastValueMapped"
        )
        lut = None
        if item.get("RealWorldValueLUTData") is not None:
            lut = np.asarray(item.RealWorldValueLUTData, dtype=np.float64).reshape(-1)
        slope = _number(item, "RealWorldValueSlope")
        intercept = _number(item, "RealWorldValueIntercept")
        if lut is None and slope is None:
            warnings.warn(
                f"{source or 'Parametric Map'}: a Real World Value Mapping has neither slope "
                "nor lookup table; assuming identity",
                stacklevel=3,
            )
        return cls(
            units=units,
            quantity=quantity,
            slope=1.0 if slope is None else slope,
            intercept=0.0 if intercept is None else intercept,
            first_value_mapped=first,
            last_value_mapped=last,
            label=str(item.get("LUTLabel", "") or ""),
            explanation=str(item.get("LUTExplanation", "") or ""),
            lut=lut,
        )


def _number(item: Dataset, *keywords: str) -> float | None:
    for keyword in keywords:
        value = item.get(keyword)
        if value not in (None, ""):
            return float(value)
    return None


def _code(item: Dataset, keyword: str, source: str | None) -> Code | None:
    sequence = item.get(keyword) or []
    if not sequence:
        return None
    try:
        return Code.from_dataset(sequence[0], source=source)
    except RadbridgeError as exc:
        warnings.warn(f"{source or 'Parametric Map'}: unusable {keyword}: {exc}", stacklevel=4)
        return None


def open_parametric_map(file: DicomFile) -> ParametricMap:
    """Open a Parametric Map from a path, encoded bytes, or a pydicom data set.

    Raises
    ------
    NotDicomError
        The input is not DICOM (or cannot be opened).
    UnsupportedObjectError
        It is DICOM but not a Parametric Map.
    DecodingError
        The file is damaged or truncated.
    """
    from radbridge.iods.multiframe.fast_read import open_large

    ds, name = open_large(file, raw_tags=(_PER_FRAME,))  # float maps are large: not copied
    try:
        return ParametricMap(ds, source=name)
    except RadbridgeError:
        raise
    except Exception as exc:  # a damaged header element (e.g. an unknown VR) read lazily
        raise DecodingError(
            f"the header cannot be read ({type(exc).__name__}: {exc})",
            path=name,
            hint="the file is damaged",
        ) from exc


def read_parametric_map(
    file: DicomFile,
    *,
    source: Series | VolumeGeometry | None = None,
) -> Volume:
    """Read a Parametric Map as a volume of real-world values.

    Parameters
    ----------
    file
        A file, its bytes, or a data set.
    source
        Place the map on this grid (the source series or its geometry); by
        default the map's own grid.

    Returns
    -------
    Volume
        float32/float64 maps keep their type (padding values become NaN);
        integer maps with a non-identity mapping become float64. Voxels of
        ``source`` that no frame covers are NaN (an integer map becomes float64
        then); see :meth:`ParametricMap.volume`.
    """
    return open_parametric_map(file).volume(source)


class ParametricMap(ReadObject):
    """A Parametric Map read for analysis (``dataset`` and ``source`` as :class:`ReadObject`).

    Attributes
    ----------
    frames
        Position and source reference of each frame.
    mappings
        The Real World Value Mapping of each frame (the first item of each).
    """

    SOP_CLASSES = (PARAMETRIC_MAP_STORAGE,)
    WHAT = "a Parametric Map"
    HINT = "radbridge reads Parametric Map Storage here"

    def __init__(self, ds: Dataset, *, source: str | None = None) -> None:
        super().__init__(ds, source=source)
        for keyword in ("Rows", "Columns", "BitsAllocated"):
            if ds.get(keyword) in (None, ""):
                raise MissingAttributeError(
                    "the pixel description is incomplete",
                    path=source,
                    attribute=keyword,
                    hint="the file is damaged",
                )
        try:
            self.frames: FrameIndex = index_frames(ds, labelmap=True, source=source)
            self._planes = FramePlanes(
                ds,
                self.frames,
                int_value(ds, "Rows", source=source),
                int_value(ds, "Columns", source=source),
                source,
                "map",
                "read frames with real_world_frames()",
            )
            self.mappings: tuple[RealWorldValueMapping, ...] = self._read_mappings()
        except RadbridgeError:
            raise
        except Exception as exc:  # malformed items raise many types
            message = f"the functional groups cannot be read ({type(exc).__name__}: {exc})"
            raise damaged_groups(message, source) from exc

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_of_reference_uid(self) -> str | None:
        """The Frame of Reference UID, if present."""
        return self._planes.frame_of_reference_uid

    @property
    def mapping(self) -> RealWorldValueMapping:
        """The mapping every frame shares.

        Raises
        ------
        UnsupportedObjectError
            Frames map to different quantities or units (use :attr:`mappings`).
        """
        first = self.mappings[0]
        for other in self.mappings[1:]:
            if (other.units, other.quantity) != (first.units, first.quantity):
                raise UnsupportedObjectError(
                    "frames hold different quantities or units",
                    path=self.source,
                    attribute="RealWorldValueMappingSequence",
                    hint="read the per-frame mappings from .mappings",
                )
        return first

    @property
    def units(self) -> Code | None:
        """The UCUM units of the values (see :attr:`mapping`)."""
        return self.mapping.units

    @property
    def quantity(self) -> Code | None:
        """The quantity the values measure (see :attr:`mapping`)."""
        return self.mapping.quantity

    @property
    def window(self) -> tuple[float, float] | None:
        """``(center, width)`` of the shared Frame VOI LUT, if any."""
        shared = _shared(self.dataset)
        voi = shared.get("FrameVOILUTSequence") if shared is not None else None
        if not voi or voi[0].get("WindowCenter") is None or voi[0].get("WindowWidth") is None:
            return None
        return _first_float(voi[0].WindowCenter), _first_float(voi[0].WindowWidth)

    def _read_mappings(self) -> tuple[RealWorldValueMapping, ...]:
        shared = _shared(self.dataset)
        if shared is not None and shared.get("RealWorldValueMappingSequence"):
            mapping = RealWorldValueMapping.from_dataset(
                shared.RealWorldValueMappingSequence[0], source=self.source
            )
            return (mapping,) * len(self.frames)
        per_frame = self.dataset.get("PerFrameFunctionalGroupsSequence") or []
        found = []
        for item in per_frame:
            sequence = item.get("RealWorldValueMappingSequence")
            if not sequence:
                break
            found.append(RealWorldValueMapping.from_dataset(sequence[0], source=self.source))
        if len(found) == len(self.frames) and found:
            return tuple(found)
        warnings.warn(
            f"{self.source or 'Parametric Map'}: no Real World Value Mapping; values are "
            "returned as stored, without units",
            stacklevel=3,
        )
        return (RealWorldValueMapping(None, None),) * len(self.frames)

    # -- pixels ---------------------------------------------------------------

    def real_world_frames(self) -> NDArray[Any]:
        """All frames in real-world values, ``[frame, row, column]`` (padding as NaN)."""
        from radbridge.pixels import FrameReader

        try:
            reader = FrameReader(self.dataset, path=self.source)
            stored = reader.frames(list(range(len(self.frames))))
        except RadbridgeError:
            raise
        except Exception as exc:
            raise DecodingError(
                f"pixel data cannot be decoded ({type(exc).__name__}: {exc})",
                path=self.source,
                attribute="PixelData",
                hint="the file is truncated or damaged",
            ) from exc
        padding = self._padding_mask(stored)
        if all(m is self.mappings[0] for m in self.mappings):
            values = self.mappings[0].apply(stored)
        else:
            values = np.stack(
                [m.apply(frame) for m, frame in zip(self.mappings, stored, strict=True)]
            )
        if padding is not None and padding.any():
            if values.dtype.kind != "f":
                values = values.astype(np.float64)
            values = np.where(padding, np.nan, values).astype(values.dtype)
        return values

    def _padding_mask(self, stored: NDArray[Any]) -> NDArray[np.bool_] | None:
        ds = self.dataset
        for keyword, limit_keyword in _PADDING_KEYWORDS:
            found = floats_value(ds, keyword, 1, source=self.source)
            if found is not None:
                limit = floats_value(ds, limit_keyword, 1, source=self.source)
                low, high = sorted((found[0], limit[0] if limit else found[0]))
                return np.asarray((stored >= low) & (stored <= high))
        if ds.get("PixelPaddingValue") is not None and stored.dtype.kind in "iu":
            return np.asarray(stored == int_value(ds, "PixelPaddingValue", source=self.source))
        return None

    # -- geometry -------------------------------------------------------------

    def geometry(self) -> VolumeGeometry:
        """Return the map's own grid: spanning its frames at their slice spacing."""
        return self._planes.geometry(merge_coincident=False)

    def volume(self, target: Series | VolumeGeometry | None = None) -> Volume:
        """Return the real-world values on ``target`` (default: the map's own grid).

        Frames are placed by position, also when they cover part of the target's
        plane on its lattice (a map of a crop: same orientation and pixel spacing,
        whole rows and columns from the target's first voxel). Voxels of the target
        that no frame covers have no value: NaN, as padding is. An integer map that
        leaves some uncovered becomes float64 for that (every integer value kept
        exactly); one that covers the target keeps its type.

        Raises
        ------
        GridMismatchError
            The frames do not lie on the target's lattice, or reach outside it.
        """
        geometry = self.geometry() if target is None else _target_geometry(target)
        at = self._planes.placement(geometry if target is None else target, partial=True)
        values = self.real_world_frames()
        if at.covers(geometry.shape):
            out = np.empty(geometry.shape, values.dtype)
        else:
            dtype = values.dtype if values.dtype.kind == "f" else np.dtype(np.float64)
            out = np.full(geometry.shape, np.nan, dtype)
        at.fill(out, values)
        return Volume.from_geometry(out, geometry)


def _first_float(value: Any) -> float:
    """Return the first value of a (possibly multi-valued) DS."""
    if isinstance(value, MultiValue | list | tuple):
        return float(value[0])
    return float(value)


def _target_geometry(target: Series | VolumeGeometry) -> VolumeGeometry:
    return target.geometry if isinstance(target, Series) else target


def _shared(ds: Dataset) -> Dataset | None:
    shared = ds.get("SharedFunctionalGroupsSequence")
    return shared[0] if shared else None
