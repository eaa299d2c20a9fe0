"""``radbridge phantom``: write the synthetic CT study with its ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import app


@app.command()
def phantom(
    out: Annotated[Path, typer.Argument(help="Output folder.")],
    slices: Annotated[int, typer.Option(help="Number of axial slices (300 mm).")] = 100,
    size: Annotated[int, typer.Option(help="Rows and columns (400 mm field of view).")] = 512,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives identical files.")] = 0,
) -> None:
    """Write a deterministic synthetic CT study (DICOM) and its ground-truth labels."""
    from radbridge.io.phantom import write_phantom

    files = write_phantom(out, slices=slices, size=size, seed=seed)
    typer.echo(f"DICOM:        {files.dicom_dir} ({slices} slices, {size}x{size})")
    typer.echo(f"labels:       {files.labels_nifti or files.labels_npy}")
    typer.echo(f"label names:  {files.labels_json}")
    typer.echo(f"truth:        {files.truth_json}")
    typer.echo(f"study UID:    {files.study_instance_uid}")
