"""``radbridge batch``: encode many results from a manifest, locally or on Dask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from radbridge.cli import JsonOption, app
from radbridge.cli.output import emit, say


@app.command()
def batch(
    manifest: Annotated[
        Path,
        typer.Argument(
            metavar="MANIFEST", help="CSV: source,kind,input[,labels,output,id,series,options]"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://HOST:8786.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Local worker processes.")] = os.cpu_count()
    or 1,
    as_json: JsonOption = False,
) -> None:
    """Encode every row of MANIFEST into --out; re-runs skip finished rows.

    Exits 1 when any row failed (reasons in OUT/failures.csv).
    """
    from radbridge.batch import RowResult, read_manifest, run_batch
    from radbridge.cli.output import progress

    rows = read_manifest(manifest)
    failed = 0
    with progress("batch", total=len(rows)) as bar:

        def advance(result: RowResult, finished: int, total: int) -> None:
            nonlocal failed
            failed += 0 if result.ok else 1
            bar(finished, total)
            if failed:
                bar.note(f"{failed} failed")

        summary = run_batch(rows, out, workers=workers, scheduler=scheduler, progress=advance)
    if as_json:
        emit(
            {
                "done": summary.done,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "seconds": round(summary.seconds, 3),
                "rows": [r.to_json() for r in summary.results],
                "failures_csv": str(summary.failures_csv) if summary.failures_csv else None,
            }
        )
    else:
        say(
            f"{summary.done} encoded, {summary.skipped} already done, {summary.failed} failed "
            f"in {summary.seconds:.1f} s"
        )
        if summary.failures_csv:
            say(f"failures: {summary.failures_csv}")
    if summary.failures_csv:
        raise typer.Exit(1)
