"""``radbridge phantom``: write the synthetic CT study with its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import JsonOption, app


@app.command()
def phantom(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="Output folder.")],
    slices: Annotated[int, typer.Option(min=2, help="Number of axial slices (300 mm).")] = 100,
    size: Annotated[
        int, typer.Option(min=16, help="Rows and columns (400 mm field of view).")
    ] = 512,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical files.")] = 0,
    follow_up: Annotated[
        int,
        typer.Option(
            "--follow-up",
            min=0,
            help="Write follow-up visit N of the same patient (lesions resolved, grown, "
            "shrunk, stable, new); 0 is the baseline.",
        ),
    ] = 0,
    days: Annotated[int, typer.Option(min=1, help="Follow-up: days after the baseline.")] = 90,
    shift: Annotated[
        str, typer.Option(help="Follow-up: patient shift x,y,z in mm (LPS).")
    ] = "0,0,0",
    rotate: Annotated[
        float, typer.Option(help="Follow-up: patient rotation about the long axis, degrees.")
    ] = 0.0,
    as_json: JsonOption = False,
) -> None:
    """Write a deterministic synthetic CT study (DICOM) and its ground-truth labels."""
    from radbridge.cli.output import emit, progress, say
    from radbridge.io.phantom import FollowUp, write_phantom

    visit = None
    if follow_up:
        try:
            x, y, z = (float(v) for v in shift.split(","))
        except ValueError:
            raise typer.BadParameter(f"--shift wants x,y,z in mm, got {shift!r}") from None
        visit = FollowUp(follow_up, days, (x, y, z), rotate)
    with progress("phantom") as advance:
        files = write_phantom(
            out, slices=slices, size=size, seed=seed, progress=advance, follow_up=visit
        )
    skipped = None if files.labels_nifti else out / "labels.nii.gz"
    if as_json:
        emit(
            {
                "dicom_dir": str(files.dicom_dir),
                "slices": slices,
                "size": size,
                "labels_nifti": str(files.labels_nifti) if files.labels_nifti else None,
                "labels_npy": str(files.labels_npy),
                "labels_json": str(files.labels_json),
                "truth_json": str(files.truth_json),
                "study_instance_uid": files.study_instance_uid,
                "series_instance_uid": files.series_instance_uid,
                "skipped": [str(skipped)] if skipped else [],
            }
        )
        return
    say(f"DICOM:        {files.dicom_dir} ({slices} slices, {size}x{size})")
    say(f"labels:       {files.labels_npy}")
    if files.labels_nifti:
        say(f"              {files.labels_nifti}")
    say(f"label names:  {files.labels_json}")
    say(f"truth:        {files.truth_json}")
    say(f"study UID:    {files.study_instance_uid}")
    if skipped:
        say(f"skipped:      {skipped} (needs nibabel: pip install 'radbridge[nifti]')")
