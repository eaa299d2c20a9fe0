"""The pixel description shared by encoders and decoders (rows, bits, samples, sign)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.errors import DecodingError, EncodingError, InvalidAttributeError

__all__ = ["FrameFormat"]

_BITS = (1, 8, 16, 32, 64)
_MONOCHROME = ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")


@dataclass(frozen=True)
class FrameFormat:
    """How the pixels of one frame are stored (the Image Pixel module attributes).

    Parameters
    ----------
    rows, columns
        Frame size.
    bits_allocated
        1, 8, 16, 32 or 64.
    bits_stored
        Significant bits per sample; ``None`` means ``bits_allocated``.
    samples_per_pixel
        1 (monochrome, palette) or 3 (colour).
    signed
        Pixel Representation 1 (two's complement) instead of 0.
    photometric_interpretation
        Defaults to ``MONOCHROME2`` for one sample and ``RGB`` for three.
    planar_configuration
        0 (colour-by-pixel) or 1 (colour-by-plane) for native colour data.
    floating
        Float Pixel Data / Double Float Pixel Data (32 or 64 bits).

    Examples
    --------
    >>> fmt = FrameFormat(rows=2, columns=3, bits_allocated=16, bits_stored=12)
    >>> fmt.dtype, fmt.frame_shape, fmt.bits_stored
    (dtype('uint16'), (2, 3), 12)
    """

    rows: int
    columns: int
    bits_allocated: int = 8
    bits_stored: int | None = None
    samples_per_pixel: int = 1
    signed: bool = False
    photometric_interpretation: str | None = None
    planar_configuration: int = 0
    floating: bool = False

    def __post_init__(self) -> None:
        if self.bits_stored is None:
            object.__setattr__(self, "bits_stored", self.bits_allocated)
        if self.photometric_interpretation is None:
            default = "RGB" if self.samples_per_pixel == 3 else "MONOCHROME2"
            object.__setattr__(self, "photometric_interpretation", default)
        problem = self._problem()
        if problem:
            raise InvalidAttributeError(problem[1], attribute=problem[0])

    def _problem(self) -> tuple[str, str] | None:
        if self.rows < 1 or self.columns < 1:
            return "Rows", f"frame size {self.rows}x{self.columns} is empty"
        if self.bits_allocated not in _BITS:
            return (
                "BitsAllocated",
                f"Bits Allocated {self.bits_allocated} is not 1, 8, 16, 32 or 64",
            )
        if not 1 <= self.stored <= self.bits_allocated:
            return (
                "BitsStored",
                f"Bits Stored {self.bits_stored} does not fit {self.bits_allocated}",
            )
        if self.samples_per_pixel not in (1, 3):
            return "SamplesPerPixel", f"Samples per Pixel {self.samples_per_pixel} is not 1 or 3"
        if self.bits_allocated == 1 and (self.samples_per_pixel != 1 or self.signed):
            return "BitsAllocated", "1-bit pixels must be unsigned with one sample"
        if self.floating and self.bits_allocated not in (32, 64):
            return "BitsAllocated", "float pixels need 32 or 64 bits"
        if self.planar_configuration not in (0, 1):
            return "PlanarConfiguration", f"invalid value {self.planar_configuration}"
        return None

    @property
    def stored(self) -> int:
        """Bits Stored as an ``int`` (never ``None``)."""
        return int(self.bits_stored or self.bits_allocated)

    @property
    def photometric(self) -> str:
        """Photometric Interpretation as a ``str`` (never ``None``)."""
        return str(self.photometric_interpretation)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The NumPy type of decoded pixels, native byte order (``bool`` for 1 bit)."""
        if self.bits_allocated == 1:
            return np.dtype(bool)
        if self.floating:
            return np.dtype(f"f{self.bits_allocated // 8}")
        return np.dtype(f"{'i' if self.signed else 'u'}{self.bits_allocated // 8}")

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """``(rows, columns)``, or ``(rows, columns, samples)`` for colour."""
        if self.samples_per_pixel == 1:
            return (self.rows, self.columns)
        return (self.rows, self.columns, self.samples_per_pixel)

    @property
    def pixels(self) -> int:
        """Samples in one frame (``rows * columns * samples_per_pixel``)."""
        return self.rows * self.columns * self.samples_per_pixel

    @property
    def frame_bits(self) -> int:
        """Bits one native frame occupies."""
        return self.pixels * self.bits_allocated

    def pydicom_options(self) -> dict[str, Any]:
        """Keyword options for pydicom's pixel encoders and decoders (one frame)."""
        options: dict[str, Any] = {
            "rows": self.rows,
            "columns": self.columns,
            "samples_per_pixel": self.samples_per_pixel,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.stored,
            "pixel_representation": int(self.signed),
            "photometric_interpretation": self.photometric,
            "number_of_frames": 1,
        }
        if self.samples_per_pixel > 1:
            options["planar_configuration"] = self.planar_configuration
        return options

    @classmethod
    def from_dataset(cls, ds: Dataset) -> FrameFormat:
        """Read the format from a data set's Image Pixel attributes.

        Raises
        ------
        DecodingError
            If Rows, Columns or Bits Allocated are missing or invalid.

        Examples
        --------
        >>> from pydicom import Dataset
        >>> ds = Dataset()
        >>> ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored = 4, 5, 1, 1
        >>> FrameFormat.from_dataset(ds).dtype
        dtype('bool')
        """
        floating = "FloatPixelData" in ds or "DoubleFloatPixelData" in ds
        try:
            bits = int(ds.BitsAllocated)
            return cls(
                rows=int(ds.Rows),
                columns=int(ds.Columns),
                bits_allocated=bits,
                bits_stored=int(ds.get("BitsStored") or bits),
                samples_per_pixel=int(ds.get("SamplesPerPixel") or 1),
                signed=bool(int(ds.get("PixelRepresentation") or 0)) and not floating,
                photometric_interpretation=str(ds.get("PhotometricInterpretation") or "") or None,
                planar_configuration=int(ds.get("PlanarConfiguration") or 0),
                floating=floating,
            )
        except (AttributeError, TypeError, ValueError) as exc:
            attribute = getattr(exc, "attribute", None) or "Rows/Columns/BitsAllocated"
            raise DecodingError(
                f"the pixel description is incomplete or invalid ({exc})",
                attribute=attribute,
            ) from exc

    @classmethod
    def of_frames(
        cls,
        frames: NDArray[Any],
        *,
        bits_allocated: int | None = None,
        bits_stored: int | None = None,
        photometric_interpretation: str | None = None,
    ) -> FrameFormat:
        """Describe an array of frames ``[frame, row, column(, sample)]``.

        Bits Allocated defaults to 1 for ``bool`` and to the item size otherwise.

        Raises
        ------
        EncodingError
            If the array shape or type cannot be stored.

        Examples
        --------
        >>> import numpy as np
        >>> FrameFormat.of_frames(np.zeros((2, 4, 4, 3), np.uint8)).photometric
        'RGB'
        """
        if frames.ndim not in (3, 4) or (frames.ndim == 4 and frames.shape[3] != 3):
            raise EncodingError(
                f"expected frames [frame, row, column] or [frame, row, column, 3], "
                f"got shape {frames.shape}",
                attribute="frames",
                hint="add a leading frame axis for a single frame",
            )
        kind = frames.dtype.kind
        if kind not in "biu":
            raise EncodingError(
                f"frames of type {frames.dtype} cannot be compressed losslessly",
                attribute="frames",
                hint="use boolean or integer frames (float pixels go in Float Pixel Data)",
            )
        if bits_allocated is None:
            bits_allocated = 1 if kind == "b" else frames.dtype.itemsize * 8
        try:
            return cls(
                rows=frames.shape[1],
                columns=frames.shape[2],
                bits_allocated=bits_allocated,
                bits_stored=bits_stored,
                samples_per_pixel=1 if frames.ndim == 3 else 3,
                signed=kind == "i" and bits_allocated != 1,
                photometric_interpretation=photometric_interpretation,
            )
        except InvalidAttributeError as exc:
            raise EncodingError(exc.message, attribute=exc.attribute) from exc
