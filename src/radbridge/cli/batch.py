"""``radbridge batch``: encode many results from a manifest, locally or on Dask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import app


@app.command()
def batch(
    manifest: Annotated[
        Path, typer.Argument(help="CSV: source,kind,input[,labels,output,id,options]")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://HOST:8786.")
    ] = None,
    workers: Annotated[int, typer.Option(help="Local worker processes.")] = os.cpu_count() or 1,
) -> None:
    """Encode every row of MANIFEST into --out; re-runs skip finished rows.

    Exits 1 when any row failed (reasons in OUT/failures.csv).
    """
    import time

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from radbridge.batch import RowResult, read_manifest, run_batch

    rows = read_manifest(manifest)
    failed = 0
    started = time.perf_counter()
    with Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("failed {task.fields[failed]}"),
        TextColumn("{task.fields[rate]} rows/s"),
        TimeRemainingColumn(),
    ) as bar:
        task = bar.add_task("batch", total=len(rows), failed=0, rate="-")

        def advance(result: RowResult, finished: int, total: int) -> None:
            nonlocal failed
            failed += 0 if result.ok else 1
            rate = finished / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=finished, failed=failed, rate=f"{rate:.2f}")

        summary = run_batch(rows, out, workers=workers, scheduler=scheduler, progress=advance)
    typer.echo(
        f"{summary.done} encoded, {summary.skipped} already done, {summary.failed} failed "
        f"in {summary.seconds:.1f} s"
    )
    if summary.failures_csv:
        typer.echo(f"failures: {summary.failures_csv}")
        raise typer.Exit(1)
