"""The ``sc`` output: the result's label map drawn over the source images (Secondary Capture).

Segment names and colours come from the result's segment descriptions (the
colour the SEG recommends, as DICOM stores it). The grey image uses the window
most source images recommend (else the 1st to 99th percentile) and shows the
minimum white when the images are MONOCHROME1. "Not for diagnostic use" is
burned into every frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from pydicom import Dataset

from radbridge.color import dicom_lab_to_rgb, rgb_to_dicom_lab
from radbridge.iods.display import common_window, shows_minimum_white
from radbridge.results.registry import Output, OutputKind, ResultContext, skipped
from radbridge.sc import encode_overlay_sc, render_overlay

__all__ = ["KIND", "ScOutput"]


@dataclass(frozen=True)
class ScOutput(Output):
    """Settings of the ``sc`` output (none yet)."""

    kind: ClassVar[str] = "sc"


def encode(context: ResultContext, output: ScOutput) -> Dataset | None:
    """Render the label map over the images; None (logged) without a label map."""
    if context.result.labels is None:
        skipped("sc", "the result has no label map")
        return None
    labels = context.labels_on_source("sc")
    volume = context.image_volume()
    names = {d.segment_number: d.label for d in context.segments}
    colours = {
        d.segment_number: dicom_lab_to_rgb(rgb_to_dicom_lab(d.display_rgb))
        for d in context.segments
        if d.display_rgb is not None
    }
    display = context.series.display  # the window and polarity the images ask for
    frames = render_overlay(
        volume,
        labels,
        colours,
        names,
        window=common_window(display),
        invert=shows_minimum_white(display),
    )
    return encode_overlay_sc(
        frames,
        context.series,
        options=context.series_options("sc"),
        profile=context.options.profile,
    )


KIND = OutputKind("sc", ScOutput, encode)
