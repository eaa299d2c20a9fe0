"""``radbridge render``: draw a SEG over its source series as PNG snapshots (and SC)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from radbridge.cli import (
    AllowNonuniformOption,
    JsonOption,
    ProfileOption,
    SegFileArgument,
    SourceOption,
    ThresholdOption,
    app,
    identity,
    read_source,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from radbridge.iods.source import Series
    from radbridge.seg import Segmentation


def _masks(
    seg: Segmentation, source: Series, threshold: float | None
) -> tuple[NDArray[Any], tuple[int, ...] | None]:
    """Return a label map when segments do not overlap, else one mask per segment."""
    from radbridge.errors import DecodingError
    from radbridge.iods.threshold import DEFAULT_THRESHOLD

    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    try:
        return seg.label_volume(source, threshold=threshold).array, None
    except DecodingError as exc:
        if exc.attribute != "SegmentsOverlap":
            raise
    stacked = seg.stacked_volume(source, threshold=threshold)
    return stacked.array, stacked.segment_numbers


@app.command("render")
def render(
    seg_file: SegFileArgument,
    source: SourceOption,
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
    style: Annotated[
        Literal["outline", "filled"],
        typer.Option(case_sensitive=False, help="How segments are drawn."),
    ] = "outline",
    count: Annotated[int, typer.Option(min=1, help="Slices in the montage.")] = 6,
    window: Annotated[
        str | None,
        typer.Option(
            help="CENTER,WIDTH of the grey image (default: the images' own window, "
            "else the 1st to 99th percentile)."
        ),
    ] = None,
    sc: Annotated[
        bool, typer.Option("--sc", help="Also write overlay.dcm (Secondary Capture).")
    ] = False,
    threshold: ThresholdOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
    allow_nonuniform: AllowNonuniformOption = False,
) -> None:
    """Write OUT/montage.png: the slices with the most segmented area, segments in colour.

    Overlapping segments are all drawn (outlines, or blended tints with --style filled).
    """
    from radbridge.cli.output import progress
    from radbridge.errors import ConfigError
    from radbridge.iods.display import common_window, shows_minimum_white
    from radbridge.sc import encode_overlay_sc, render_overlay, render_png_montage
    from radbridge.seg import read_segmentation

    centre_width: tuple[float, float] | None = None
    if window is not None:
        try:
            centre, width = (float(v) for v in window.split(","))
        except ValueError:
            raise ConfigError(
                f"cannot read the window {window!r}", attribute="--window", hint="write 40,400"
            ) from None
        centre_width = (centre, width)
    with progress("render", total=2) as advance:
        src = read_source(
            source, allow_nonuniform=allow_nonuniform
        )  # the folder is scanned once: headers now, pixels below
        seg = read_segmentation(seg_file)
        labels, numbers = _masks(seg, src, threshold)
        colours = {n: d.display_rgb for n, d in seg.segments.items() if d.display_rgb is not None}
        names = {n: d.label for n, d in seg.segments.items()}
        volume = src.volume(rescale=True)
        advance(1, 2)
        frames = render_overlay(
            volume,
            labels,
            colours,
            names,
            style=style,
            window=centre_width or common_window(src.display),
            segments=numbers,
            invert=shows_minimum_white(src.display),
        )
        advance(2, 2)
    output.mkdir(parents=True, exist_ok=True)
    chosen = render_png_montage(frames, labels, output / "montage.png", count=count)
    report: dict[str, Any] = {
        "montage": str(output / "montage.png"),
        "slices": [k + 1 for k in chosen],
        "overlay": None,
    }
    if sc:
        ds = encode_overlay_sc(frames, src, profile=profile)
        ds.save_as(output / "overlay.dcm", enforce_file_format=True)
        report["overlay"] = {
            "output": str(output / "overlay.dcm"),
            **identity(ds),
            "frame_count": int(ds.NumberOfFrames),
        }
    _print_render(report, as_json)


def _print_render(report: dict[str, Any], as_json: bool) -> None:
    from radbridge.cli.output import emit, say

    if as_json:
        emit(report)
        return
    say(f"wrote {report['montage']}: slices {report['slices']}")
    if report["overlay"]:
        overlay = report["overlay"]
        say(f"wrote {overlay['output']}: {overlay['frame_count']} frames")
