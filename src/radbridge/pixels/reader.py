"""Read frames from a data set's pixel data lazily: only the frames asked for.

:class:`FrameReader` works for native pixel data (Explicit/Implicit VR Little
Endian, Explicit VR Big Endian, Deflated Explicit VR Little Endian, which
pydicom inflates on reading) and encapsulated pixel data (RLE, JPEG-LS,
JPEG 2000, Deflated Image Frame Compression, and any other compressed syntax
pydicom has a decoder for). Native frames are views into the element's
bytes until selected; compressed frames are located once and decoded one by
one when asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from radbridge.errors import DecodingError, MissingAttributeError
from radbridge.pixels.bits import unpack_frames
from radbridge.pixels.codecs import decode_frame
from radbridge.pixels.fragments import FragmentIndex
from radbridge.pixels.frame_format import FrameFormat
from radbridge.pixels.parallel import choose_pool, decode_parallel, default_workers
from radbridge.pixels.syntax import TransferSyntax

__all__ = ["FrameReader", "read_planes"]

log = logging.getLogger(__name__)

_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _syntax_of(ds: Dataset) -> TransferSyntax | str:
    meta = getattr(ds, "file_meta", None)
    uid = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not uid:
        implicit, little = ds.original_encoding
        if implicit is None:
            return TransferSyntax.EXPLICIT
        if not little:
            return TransferSyntax.BIG_ENDIAN
        return TransferSyntax.IMPLICIT if implicit else TransferSyntax.EXPLICIT
    try:
        return TransferSyntax(uid)
    except ValueError:
        return uid  # another compressed syntax: pydicom's decoders may handle it


class FrameReader:
    """Frames of a data set's pixel data, decoded on demand.

    Parameters
    ----------
    ds
        A data set with Pixel Data (or Float/Double Float Pixel Data) and the
        Image Pixel attributes (Rows, Columns, Bits Allocated, ...).
    path
        The file the data set came from, for error messages.

    Attributes
    ----------
    format : FrameFormat
        Rows, columns, bits and samples of each frame.
    transfer_syntax : TransferSyntax or str
        The syntax (a UID string for compressed syntaxes without a member).
    number_of_frames : int
        Number of Frames (1 when absent).

    Raises
    ------
    MissingAttributeError
        If the data set has no pixel data.
    DecodingError
        If the pixel description is unusable.

    Examples
    --------
    >>> import numpy as np
    >>> from pydicom import Dataset
    >>> from radbridge.pixels import encode_pixel_data
    >>> ds = Dataset()
    >>> ds.Rows, ds.Columns, ds.BitsAllocated, ds.NumberOfFrames = 3, 5, 1, 4
    >>> mask = np.arange(60).reshape(4, 3, 5) % 7 == 0
    >>> encode_pixel_data(mask, "explicit").store(ds)
    >>> reader = FrameReader(ds)
    >>> bool((reader.frames([3, 1]) == mask[[3, 1]]).all()), reader.frame(0).dtype
    (True, dtype('bool'))
    """

    def __init__(self, ds: Dataset, *, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else getattr(ds, "filename", None)
        keyword = next((k for k in _KEYWORDS if k in ds), None)
        if keyword is None:
            raise MissingAttributeError(
                "the data set has no pixel data", path=self.path, attribute="PixelData"
            )
        try:
            self.format = FrameFormat.from_dataset(ds)
        except DecodingError as exc:
            raise self._with_path(exc) from exc
        self.transfer_syntax = _syntax_of(ds)
        self.number_of_frames = int(ds.get("NumberOfFrames") or 1)
        self._element = ds[keyword]
        self._ds = ds
        self._fragments: FragmentIndex | None = None
        self._native: NDArray[Any] | None = None
        self.encapsulated = (
            not isinstance(self.transfer_syntax, TransferSyntax)
            or self.transfer_syntax.encapsulated
        )

    def __len__(self) -> int:
        return self.number_of_frames

    def __iter__(self) -> Iterator[NDArray[Any]]:
        return self.iter_frames()

    def iter_frames(self, indices: Sequence[int] | None = None) -> Iterator[NDArray[Any]]:
        """Yield frames ``indices`` (default all) one at a time, holding one in memory.

        Raises
        ------
        DecodingError
            As for :meth:`frame`, when the failing frame is reached.
        """
        for index in range(self.number_of_frames) if indices is None else indices:
            yield self.frame(index)

    def _with_path(self, exc: DecodingError) -> DecodingError:
        return DecodingError(exc.message, path=self.path, attribute=exc.attribute, hint=exc.hint)

    def frame(self, index: int) -> NDArray[Any]:
        """Frame ``index`` (0-based) in ``format.frame_shape`` and ``format.dtype``.

        Raises
        ------
        DecodingError
            If the frame does not exist or cannot be decoded (names the 1-based frame).
        """
        frames = self.frames([index])
        return frames.reshape(frames.shape[1:])

    def decodes_in_this_thread(self, count: int, workers: int | None = None) -> bool:
        """Whether :meth:`frames` decodes ``count`` frames here, without worker processes.

        Native frames always are; compressed ones when the work is too small to pay
        for workers (bench/PIXELS.md). Callers use it to size their chunks.

        Examples
        --------
        >>> from pydicom import Dataset
        >>> ds = Dataset()
        >>> ds.Rows, ds.Columns, ds.BitsAllocated, ds.PixelData = 2, 2, 8, bytes(4)
        >>> FrameReader(ds).decodes_in_this_thread(1000)
        True
        """
        if not self.encapsulated or count < 2:
            return True
        chosen = default_workers() if workers is None else max(1, workers)
        return choose_pool(self.transfer_syntax, self.format, count, chosen, decode=True) != "fork"

    def frames(
        self, indices: Sequence[int] | None = None, *, workers: int | None = None
    ) -> NDArray[Any]:
        """Frames ``indices`` (0-based, any order; default all) stacked on axis 0.

        Parameters
        ----------
        indices
            Frames to decode; only these are read.
        workers
            Processes for decoding compressed frames; default: the usable CPUs,
            used only when the work is large enough to pay for them (see
            bench/PIXELS.md). Native frames are never decoded in workers.

        Raises
        ------
        DecodingError
            If a frame does not exist or cannot be decoded (names the 1-based frame).
        """
        wanted = list(range(self.number_of_frames)) if indices is None else list(indices)
        try:
            for index in wanted:
                if not 0 <= index < self.number_of_frames:
                    raise DecodingError(
                        f"frame {index + 1} does not exist ({self.number_of_frames} frames)",
                        attribute="NumberOfFrames",
                    )
            if not self.encapsulated:
                return self._native_frames(wanted)
            return self._normalise(self._decode_many(wanted, workers))
        except DecodingError as exc:
            raise self._with_path(exc) from exc

    def _decode(self, index: int) -> NDArray[Any]:
        return decode_frame(
            self.encoded_frame(index), self.transfer_syntax, self.format, index=index
        )

    def _decode_many(self, wanted: list[int], workers: int | None) -> NDArray[Any]:
        fmt = self.format
        count = default_workers() if workers is None else max(1, workers)
        syntax = self.transfer_syntax
        if wanted and choose_pool(syntax, fmt, len(wanted), count, decode=True) == "fork":
            self.encoded_frame(wanted[0])  # locate the fragments once, before forking
            try:
                return decode_parallel(self._decode, wanted, fmt.frame_shape, fmt.dtype, count)
            except (OSError, RuntimeError) as exc:  # no processes allowed, or a worker died
                log.warning("parallel decoding failed (%s); decoding in this thread", exc)
        out = np.empty((len(wanted), *fmt.frame_shape), fmt.dtype)
        for i, index in enumerate(wanted):
            out[i] = self._decode(index)
        return out

    def encoded_frame(self, index: int) -> bytes:
        """Return the compressed bytes of frame ``index`` (encapsulated pixel data only).

        Raises
        ------
        DecodingError
            If the pixel data is native, or the frame is missing or truncated.
        """
        if not self.encapsulated:
            raise DecodingError(
                "native pixel data has no compressed frames", path=self.path, attribute="PixelData"
            )
        if self._fragments is None:
            eot = None
            if "ExtendedOffsetTable" in self._ds and "ExtendedOffsetTableLengths" in self._ds:
                eot = (
                    bytes(self._ds.ExtendedOffsetTable),
                    bytes(self._ds.ExtendedOffsetTableLengths),
                )
            try:
                self._fragments = FragmentIndex(
                    self._element.value, self.number_of_frames, extended_offsets=eot
                )
            except DecodingError as exc:
                raise self._with_path(exc) from exc
        return self._fragments.frame(index)

    # -- native -------------------------------------------------------------------------

    def _native_bytes(self) -> NDArray[np.uint8]:
        if self._native is None:
            value = self._element.value
            data = np.frombuffer(value if value is not None else b"", np.uint8)
            syntax = self.transfer_syntax
            big = isinstance(syntax, TransferSyntax) and not syntax.little_endian
            if big and self._element.VR == "OW" and self.format.bits_allocated in (1, 8):
                # OW values are 16-bit words; big endian stores each word's high byte first.
                data = data[: data.size // 2 * 2].reshape(-1, 2)[:, ::-1].reshape(-1)
            self._native = data
            expected = (self.number_of_frames * self.format.frame_bits + 7) // 8
            if data.size < expected:
                log.warning(
                    "%s: pixel data holds %d bytes, %d frames need %d: the last frames are missing",
                    self.path or "data set",
                    data.size,
                    self.number_of_frames,
                    expected,
                )
            elif data.size > expected + 1:
                log.warning(
                    "%s: pixel data holds %d bytes more than %d frames need; they are ignored",
                    self.path or "data set",
                    data.size - expected,
                    self.number_of_frames,
                )
        return self._native

    def _native_frames(self, wanted: list[int]) -> NDArray[Any]:
        data = self._native_bytes()
        fmt = self.format
        if fmt.bits_allocated == 1:
            return unpack_frames(
                data,
                rows=fmt.rows,
                columns=fmt.columns,
                number_of_frames=self.number_of_frames,
                indices=wanted,
            )
        syntax = self.transfer_syntax
        little = not isinstance(syntax, TransferSyntax) or syntax.little_endian
        dtype = fmt.dtype.newbyteorder("<" if little else ">")
        available = data.size // (fmt.pixels * dtype.itemsize)
        for index in wanted:
            if index >= available:
                raise DecodingError(
                    f"frame {index + 1} is missing: the pixel data holds only "
                    f"{available} complete frames of {self.number_of_frames}",
                    attribute="PixelData",
                    hint="the file is truncated, or Number of Frames/Rows/Columns are wrong",
                )
        view = data[: available * fmt.pixels * dtype.itemsize].view(dtype)
        chosen = view.reshape(available, fmt.pixels)[wanted]  # copies only these frames
        if fmt.samples_per_pixel > 1 and fmt.planar_configuration == 1:
            planes = chosen.reshape(len(wanted), fmt.samples_per_pixel, fmt.rows, fmt.columns)
            chosen = np.moveaxis(planes, 1, -1)
        shaped = chosen.reshape(len(wanted), *fmt.frame_shape)
        return self._normalise(np.ascontiguousarray(shaped, dtype=fmt.dtype))

    def _normalise(self, frames: NDArray[Any]) -> NDArray[Any]:
        """Clear (unsigned) or sign-extend (signed) the bits above Bits Stored."""
        fmt = self.format
        if fmt.floating or fmt.bits_allocated == 1 or fmt.stored >= fmt.bits_allocated:
            return frames
        if fmt.signed:
            shift = fmt.bits_allocated - fmt.stored
            frames <<= shift
            frames >>= shift
        else:
            frames &= (1 << fmt.stored) - 1
        return frames


def read_planes(
    planes: Sequence[tuple[Dataset, int]],
    *,
    paths: Sequence[str | os.PathLike[str] | None] | None = None,
    workers: int | None = None,
) -> NDArray[Any]:
    """Decode one frame of each of several data sets: the slices of a series, stacked.

    Parameters
    ----------
    planes
        ``(data set, 0-based frame)`` per plane, in the order wanted; a data set may
        appear several times (the frames of a multi-frame image).
    paths
        The file of each plane, for messages.
    workers
        Processes for decoding compressed frames (default: the usable CPUs, used
        only when the work pays for them, as :meth:`FrameReader.frames` decides).

    Returns
    -------
    numpy.ndarray
        ``[plane, row, column]`` in the common dtype of the planes.

    Raises
    ------
    MissingAttributeError
        A data set has no pixel data.
    DecodingError
        A frame is missing, truncated or cannot be decoded (names the file), or the
        planes differ in matrix size.

    Examples
    --------
    >>> from pydicom import examples
    >>> read_planes([(examples.ct, 0), (examples.ct, 0)]).shape
    (2, 128, 128)
    """
    readers: dict[int, FrameReader] = {}
    chosen: list[tuple[FrameReader, int]] = []
    for index, (ds, frame) in enumerate(planes):
        reader = readers.get(id(ds))
        if reader is None:
            reader = FrameReader(ds, path=paths[index] if paths else None)
            readers[id(ds)] = reader
        chosen.append((reader, frame))
    if not chosen:
        raise DecodingError("no planes to read", attribute="PixelData")
    if len(readers) == 1:  # one (multi-frame) image: its reader decodes in parallel itself
        reader = chosen[0][0]
        return reader.frames([frame for _, frame in chosen], workers=workers)
    shapes = {r.format.frame_shape for r in readers.values()}
    if len(shapes) > 1:
        raise DecodingError(
            f"the images differ in matrix size ({sorted(shapes)})", attribute="Rows/Columns"
        )
    dtype = np.result_type(*(r.format.dtype for r in readers.values()))
    first = chosen[0][0]
    count = default_workers() if workers is None else max(1, workers)
    kind = choose_pool(first.transfer_syntax, first.format, len(chosen), count, decode=True)
    if first.encapsulated and kind == "fork":

        def decode(i: int) -> NDArray[Any]:
            reader, frame = chosen[i]
            return reader.frame(frame)

        try:
            return decode_parallel(
                decode, range(len(chosen)), first.format.frame_shape, dtype, count
            )
        except (OSError, RuntimeError) as exc:  # no processes allowed, or a worker died
            log.warning("parallel decoding failed (%s); decoding in this thread", exc)
    out = np.empty((len(chosen), *first.format.frame_shape), dtype)
    for i, (reader, frame) in enumerate(chosen):
        out[i] = reader.frame(frame)
    return out
