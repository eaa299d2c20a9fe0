"""Render segments over their source images: outline or filled, legend, warning banner.

Many PACS viewers cannot show a Segmentation or a Parametric Map, so AI results
also travel as pictures. :func:`render_frames` composites each slice: the
source image in grey (windowed), each segment in its display colour (outline,
or alpha-blended and outlined, so overlapping segments all show), a "NOT FOR
DIAGNOSTIC USE" banner above the image and a legend below it. Small images are
enlarged (nearest neighbour) so the text stays legible. Everything is NumPy and
a built-in pixel font, so the same input always gives the same pixels.

Examples
--------
>>> import numpy as np
>>> from radbridge.io.phantom import generate_phantom
>>> ph = generate_phantom(slices=3, size=32)
>>> r = render_frames(ph.hu, ph.labels.array, {1: (255, 0, 0)}, {1: "body"}, window=(40, 400))
>>> r.frames.shape[0], r.frames.shape[-1], r.frames.dtype, r.zoom
(3, 3, dtype('uint8'), 8)
>>> banner = r.frames[:, r.banner_rows]
>>> bool((banner == BANNER_FOREGROUND).all(axis=-1).any())
True
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge.errors import EncodingError, GridMismatchError
from radbridge.geometry import Volume
from radbridge.iods.common import choice
from radbridge.iods.content import default_colour
from radbridge.iods.sc.font import GLYPH_HEIGHT, text_mask, text_width
from radbridge.iods.source import Series

__all__ = [
    "BANNER_TEXT",
    "OverlayStyle",
    "Rendering",
    "render_frames",
    "render_overlay",
]

#: Text burned into every overlay frame.
BANNER_TEXT = "NOT FOR DIAGNOSTIC USE"
#: Banner colours: white text on dark red.
BANNER_BACKGROUND = (150, 0, 0)
BANNER_FOREGROUND = (255, 255, 255)
_MIN_WIDTH = 256

RGB = tuple[int, int, int]


class OverlayStyle(enum.StrEnum):
    """How segments are drawn: ``outline`` (boundary only) or ``filled`` (tinted + outline)."""

    OUTLINE = "outline"
    FILLED = "filled"


@dataclass(frozen=True, eq=False)
class Rendering:
    """Rendered frames and where the image lies in them.

    Attributes
    ----------
    frames
        ``uint8 [slice, row, column, 3]`` (RGB).
    image_top
        First frame row of the (enlarged) image; the banner is above it.
    zoom
        Enlargement factor of the source pixels (nearest neighbour).
    image_shape
        ``(rows, columns)`` of the source image.
    """

    frames: NDArray[np.uint8]
    image_top: int
    zoom: int
    image_shape: tuple[int, int]

    def image_area(self) -> NDArray[np.uint8]:
        """Return the image part of every frame, without banner and legend."""
        rows = self.image_shape[0] * self.zoom
        return self.frames[:, self.image_top : self.image_top + rows]

    @property
    def banner_rows(self) -> slice:
        """Frame rows of the banner."""
        return slice(0, self.image_top)

    @property
    def legend_rows(self) -> slice:
        """Frame rows of the legend (may be empty)."""
        return slice(self.image_top + self.image_shape[0] * self.zoom, self.frames.shape[1])


def _grey(
    source: Series | Volume, window: tuple[float, float] | None, invert: bool
) -> NDArray[np.uint8]:
    if isinstance(source, Series):
        return np.zeros(source.geometry.shape, np.uint8)
    values = np.asarray(source.array, dtype=np.float32)
    if window is None:
        sample = values[:, ::4, ::4]
        low, high = (float(v) for v in np.percentile(sample, [1, 99]))
        if high <= low:
            high = low + 1
    else:
        center, width = (float(v) for v in window)
        if not width > 0:
            raise EncodingError(f"window width {width} must be positive", attribute="window")
        low, high = center - width / 2, center + width / 2
    scaled = np.clip((values - low) / (high - low), 0, 1) * 255
    grey: NDArray[np.uint8] = np.rint(scaled).astype(np.uint8)
    return 255 - grey if invert else grey


def _check_labels(labels: Any, shape: tuple[int, int, int]) -> NDArray[np.int64]:
    array = np.asarray(labels)
    if array.shape != shape:
        raise GridMismatchError(
            f"labels have shape {array.shape} but the source grid is {shape} [slice, row, column]",
            attribute="labels",
            hint="give the labels on the source grid, e.g. seg.label_volume(source).array",
        )
    if array.dtype.kind not in "biu" or (array.size and int(array.min()) < 0):
        raise EncodingError(
            "labels must be non-negative integers (0 = background)", attribute="labels"
        )
    return array.astype(np.int64, copy=False)


def _layers(
    labels: Any, shape: tuple[int, int, int], segments: Sequence[int] | None
) -> tuple[list[int], Callable[[int], NDArray[np.bool_]]]:
    """Return the segment numbers to draw (in order) and a function giving each one's mask.

    A label map gives one layer per label present; stacked masks
    ``[segment, slice, row, column]`` (which may overlap) one per non-empty segment.
    Masks are made one at a time, so a 100-label map never becomes 100 volumes.
    """
    array = np.asarray(labels)
    if array.ndim != 4:
        label_map = _check_labels(array, shape)
        present = [int(k) for k in np.unique(label_map) if k > 0]
        return present, lambda number: label_map == number
    numbers = [int(n) for n in segments] if segments is not None else list(range(1, len(array) + 1))
    if array.shape[1:] != shape or len(numbers) != len(array):
        raise GridMismatchError(
            f"stacked masks have shape {array.shape} for {len(numbers)} segments but the "
            f"source grid is {shape} [slice, row, column]",
            attribute="labels",
            hint="give [segment, slice, row, column] masks on the source grid, e.g. "
            "seg.stacked_volume(source, threshold=0.5)",
        )
    if array.dtype != np.bool_ and (
        array.dtype.kind not in "biu" or (array.size and not np.isin(array, (0, 1)).all())
    ):
        raise EncodingError(
            "stacked masks must hold only 0 and 1 (threshold fractional values first)",
            attribute="labels",
        )
    if len(set(numbers)) != len(numbers) or any(n < 1 for n in numbers):
        raise EncodingError(
            f"segment numbers {numbers[:10]} must be distinct and start at 1",
            attribute="segments",
        )
    index = {n: i for i, n in enumerate(numbers)}
    present = [n for n in numbers if array[index[n]].any()]
    return present, lambda number: array[index[number]].astype(bool, copy=False)


def _lut(numbers: Sequence[int], colours: Mapping[int, RGB]) -> dict[int, RGB]:
    lut: dict[int, RGB] = {}
    for label in numbers:
        colour = colours.get(label) or default_colour(label)
        if len(colour) != 3 or not all(0 <= int(c) <= 255 for c in colour):
            raise EncodingError(
                f"colour {colour!r} of label {label} is not RGB 0-255", attribute="colours"
            )
        lut[label] = (int(colour[0]), int(colour[1]), int(colour[2]))
    return lut


def _outline(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """In-plane boundary pixels of a mask (image edges count as boundary)."""
    edge = np.zeros(mask.shape, bool)
    differs_rows = mask[:, 1:] != mask[:, :-1]
    differs_cols = mask[:, :, 1:] != mask[:, :, :-1]
    edge[:, 1:] |= differs_rows
    edge[:, :-1] |= differs_rows
    edge[:, :, 1:] |= differs_cols
    edge[:, :, :-1] |= differs_cols
    edge[:, [0, -1], :] = True
    edge[:, :, [0, -1]] = True
    return edge & mask


def _box(mask: NDArray[np.bool_]) -> tuple[slice, slice, slice] | None:
    """Return the bounding box of a 3-D mask, one pixel wider in-plane where possible."""
    spans = []
    for axis in range(3):
        present = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        if not present.size:
            return None
        grow = 0 if axis == 0 else 1
        spans.append(
            slice(
                max(int(present[0]) - grow, 0), min(int(present[-1]) + 1 + grow, mask.shape[axis])
            )
        )
    return spans[0], spans[1], spans[2]


def _draw_layer(
    image: NDArray[np.uint8],
    mask: NDArray[np.bool_],
    colour: RGB,
    zoom: int,
    style: OverlayStyle,
    opacity: float,
) -> None:
    """Tint (filled) and outline one segment over what is already drawn.

    Tints blend over earlier segments (alpha compositing), so overlapping segments
    all show; outlines take each segment's own colour, the later one on top.
    """
    box = _box(mask)
    if box is None:
        return
    k, r, c = box
    big = _enlarge(mask[k, r, c], zoom)
    view = image[k, r.start * zoom : r.stop * zoom, c.start * zoom : c.stop * zoom]
    if style is OverlayStyle.FILLED:
        tint = np.array(colour, np.float32)
        mixed = view[big].astype(np.float32) * (1 - opacity) + tint * opacity
        view[big] = np.rint(mixed).astype(np.uint8)
    # The box has a one-pixel margin, so its border is the image's border only where
    # the mask touches the image edge (which then counts as boundary).
    view[_outline(big)] = colour


def _enlarge(array: NDArray[Any], zoom: int) -> NDArray[Any]:
    if zoom == 1:
        return array
    return np.repeat(np.repeat(array, zoom, axis=1), zoom, axis=2)


def _draw_text(
    canvas: NDArray[np.uint8], text: str, top: int, left: int, scale: int, colour: RGB
) -> None:
    """Draw ``text`` into every frame of ``canvas`` (clipped at the right edge)."""
    mask = text_mask(text, scale)
    width = min(mask.shape[1], canvas.shape[2] - left)
    if width <= 0:
        return
    region = canvas[:, top : top + mask.shape[0], left : left + width]
    region[:, mask[: region.shape[1], :width]] = colour


def _banner(width: int, scale: int, frames: int) -> NDArray[np.uint8]:
    pad = 2 * scale
    banner = np.empty((frames, GLYPH_HEIGHT * scale + 2 * pad, width, 3), np.uint8)
    banner[:] = BANNER_BACKGROUND
    text = BANNER_TEXT
    while text_width(text, scale) > width - 2 * pad and scale > 1:
        scale -= 1
    left = max(pad, (width - text_width(text, scale)) // 2)
    _draw_text(banner, text, pad, left, scale, BANNER_FOREGROUND)
    return banner


def _legend(
    entries: list[tuple[RGB, str]], width: int, scale: int, frames: int
) -> NDArray[np.uint8]:
    """Lay legend entries (swatch + name) out left to right, wrapping lines."""
    pad = 2 * scale
    line = GLYPH_HEIGHT * scale + pad
    places: list[tuple[int, int, RGB, str]] = []
    x, y = pad, pad
    for colour, name in entries:
        room = width - 2 * pad - line
        while name and text_width(name, scale) > room:
            name = name[:-1]
        needed = line + text_width(name, scale) + 3 * pad
        if x > pad and x + needed > width:
            x, y = pad, y + line
        places.append((x, y, colour, name))
        x += needed
    height = (y + line + pad) if entries else 0
    legend = np.zeros((frames, height, width, 3), np.uint8)
    swatch = GLYPH_HEIGHT * scale
    for x, y, colour, name in places:
        legend[:, y : y + swatch, x : x + swatch] = colour
        _draw_text(legend, name, y, x + swatch + pad, scale, (255, 255, 255))
    return legend


def render_frames(
    source: Series | Volume,
    labels: NDArray[Any],
    colours: Mapping[int, RGB],
    names: Mapping[int, str],
    *,
    style: OverlayStyle | str = OverlayStyle.OUTLINE,
    window: tuple[float, float] | None = None,
    opacity: float = 0.4,
    legend: bool = True,
    segments: Sequence[int] | None = None,
    invert: bool = False,
) -> Rendering:
    """Composite ``labels`` over the source images; return frames and their layout.

    Parameters
    ----------
    source
        A :class:`~radbridge.geometry.Volume` of source pixel values (e.g.
        ``read_volume(folder, rescale=True)``), or a
        :class:`~radbridge.iods.source.Series` for labels on black.
    labels
        ``[slice, row, column]`` integers on the source grid (0 = background), or
        stacked masks ``[segment, slice, row, column]`` (0/1), which may overlap
        (e.g. ``seg.stacked_volume(source, threshold=0.5).array``).
    colours
        RGB colour of each label; labels without one get a colour-blind-safe
        default.
    names
        Legend text of each label (``SEGMENT n`` when missing).
    style
        ``outline`` or ``filled`` (tinted at ``opacity``, outlined in full colour).
    window
        ``(center, width)`` for the grey image (e.g. the one the source images
        recommend: :func:`~radbridge.iods.display.common_window`); default: 1st
        to 99th percentile.
    opacity
        Tint strength of ``filled``, 0 < opacity <= 1.
    legend
        Add the legend strip below the image.
    segments
        Segment number of each stacked mask (default 1..N); ignored for a label map.
    invert
        Show the minimum white, as MONOCHROME1 source images are shown
        (:func:`~radbridge.iods.display.shows_minimum_white`).

    Returns
    -------
    Rendering
    """
    chosen = choice(OverlayStyle, style, "style", what="style")
    if not 0 < opacity <= 1:
        raise EncodingError(f"opacity {opacity} must be in (0, 1]", attribute="opacity")
    shape = source.geometry.shape
    numbers, mask_of = _layers(labels, shape, segments)
    lut = _lut(numbers, colours)
    zoom = max(1, -(-_MIN_WIDTH // shape[2]))
    grey = _enlarge(_grey(source, window, invert), zoom)
    image = np.repeat(grey[..., None], 3, axis=3)
    for number in numbers:
        _draw_layer(image, mask_of(number), lut[number], zoom, chosen, opacity)
    width = image.shape[2]
    scale = max(1, width // _MIN_WIDTH)
    banner = _banner(width, scale, shape[0])
    parts = [banner, image]
    if legend:
        entries = [(lut[k], str(names.get(k) or f"segment {k}").upper()) for k in numbers]
        parts.append(_legend(entries, width, scale, shape[0]))
    frames = np.ascontiguousarray(np.concatenate(parts, axis=1))
    return Rendering(frames, banner.shape[1], zoom, (shape[1], shape[2]))


def render_overlay(
    source: Series | Volume,
    labels: NDArray[Any],
    colours: Mapping[int, RGB],
    names: Mapping[int, str],
    *,
    style: OverlayStyle | str = OverlayStyle.OUTLINE,
    window: tuple[float, float] | None = None,
    opacity: float = 0.4,
    segments: Sequence[int] | None = None,
    invert: bool = False,
) -> NDArray[np.uint8]:
    """Return RGB frames ``uint8 [slice, row, column, 3]`` of labels over the source.

    See :func:`render_frames` (this returns its ``frames``).

    Examples
    --------
    >>> import numpy as np
    >>> from radbridge.io.phantom import generate_phantom
    >>> ph = generate_phantom(slices=2, size=64)
    >>> render_overlay(ph.hu, ph.labels.array, {}, ph.label_names, style="filled").shape[:1]
    (2,)
    """
    return render_frames(
        source,
        labels,
        colours,
        names,
        style=style,
        window=window,
        opacity=opacity,
        segments=segments,
        invert=invert,
    ).frames
