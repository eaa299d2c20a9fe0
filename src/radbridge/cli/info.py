"""``radbridge info``: what studies and series a path holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from radbridge.cli import AllowNonuniformOption, app
from radbridge.cli.output import emit, say


@app.command()
def info(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Files or folders to scan.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the JSON contract (see docs/cli.md).")
    ] = False,
    allow_nonuniform: AllowNonuniformOption = False,
) -> None:
    """List studies and series: modality, counts, shape, spacing.

    With --json: also the 4x4 LPS affine and the SOP Instance UIDs in slice order.
    """
    from radbridge.io.describe import describe

    result = describe(paths, allow_nonuniform_spacing=allow_nonuniform)
    if as_json:
        emit(result)
        return
    print_table(result)


def print_table(result: dict[str, Any]) -> None:
    """Print studies and series as indented lines (UIDs are never wrapped)."""
    for study in result["studies"]:
        say(
            f"study {study['study_instance_uid']}  date {study['study_date'] or '-'}  "
            f"{study['study_description']}".rstrip()
        )
        for series in study["series"]:
            count = series["instance_count"]
            line = (
                f"  series {series['series_instance_uid']}  {series['modality'] or '?'}  "
                f"{count} instance{'s' if count != 1 else ''}"
            )
            volume = series["volume"]
            if volume:
                shape = "x".join(map(str, volume["shape"]))
                spacing = " x ".join(f"{v:g}" for v in volume["spacing"])
                line += f"  {shape}  {spacing} mm"
            say(line)
            if series["volume_error"]:
                say(f"    no volume: {series['volume_error']}")
    if result["skipped"]:
        say(
            f"{len(result['skipped'])} file(s) skipped (not DICOM, duplicate or unreadable); "
            "--json lists them"
        )
