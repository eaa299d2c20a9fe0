"""``radbridge demo``: the README's first command runs this."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import app


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its files.")] = Path(
        "demo-output"
    ),
    slices: Annotated[int, typer.Option(help="Phantom slices.")] = 100,
    size: Annotated[int, typer.Option(help="Phantom matrix size.")] = 512,
) -> None:
    """Generate the phantom study and describe it (the gateway demo replaces this)."""
    from radbridge.cli.info import _print_table
    from radbridge.io.describe import describe
    from radbridge.io.phantom import write_phantom

    typer.echo(f"1. writing the phantom CT study to {workdir / 'phantom'}")
    files = write_phantom(workdir / "phantom", slices=slices, size=size, seed=0)
    typer.echo("2. radbridge info of it:")
    _print_table(describe(files.dicom_dir))
    typer.echo(f"ground truth: {files.labels_nifti or files.labels_npy}, {files.labels_json}")
