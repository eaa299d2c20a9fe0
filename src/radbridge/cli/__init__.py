"""The ``radbridge`` command line.

Each command group lives in its own module and is registered here; heavy
imports happen inside the commands so ``radbridge --help`` starts fast.
:func:`main` takes ``argv`` so the CLI can be called (and tested) in-process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from radbridge.cli.coerce import PlainGroup
from radbridge.errors import RadbridgeError

if TYPE_CHECKING:
    from pydicom import Dataset

    from radbridge.geometry import Volume
    from radbridge.iods.source import Series
    from radbridge.models import ModelResult
    from radbridge.wsi import Slide

__all__ = [
    "THRESHOLD_HELP",
    "AlgorithmVersionOption",
    "AllowNonuniformOption",
    "ContentCreatorOption",
    "JsonOption",
    "ProfileOption",
    "SegFileArgument",
    "SeriesDescriptionOption",
    "SeriesNumberOption",
    "SeriesOption",
    "SourceOption",
    "ThresholdOption",
    "app",
    "app_for",
    "command_group",
    "encode_one",
    "identity",
    "main",
    "object_report",
    "one_blas_thread",
    "read_source",
    "series_fields",
    "write_object",
    "write_volume",
]

#: Help of every --threshold option (the rule itself is radbridge.iods.threshold).
THRESHOLD_HELP = (
    "FRACTIONAL SEGs: a voxel is inside a segment when its fraction is at least this (default 0.5)."
)


def _check_threshold(value: float | None) -> float | None:
    if value is not None and not 0 < value <= 1:
        raise typer.BadParameter(f"{value:g} is not in 0 < threshold <= 1")
    return value


#: The --threshold option of the commands that read FRACTIONAL SEGs.
ThresholdOption = Annotated[
    float | None, typer.Option("--threshold", callback=_check_threshold, help=THRESHOLD_HELP)
]

#: Options several commands share.
SourceOption = Annotated[Path, typer.Option("--source", help="Folder of the source series.")]
SeriesOption = Annotated[
    str | None, typer.Option("--series", help="Source series UID if DIR holds several.")
]
ProfileOption = Annotated[
    Literal["interop", "slicer", "ohif", "pacs", "compact"] | None,
    typer.Option(
        "--profile",
        case_sensitive=False,
        help="Encodings for a kind of reader; default interop: every reader "
        "(docs/compatibility.md).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
AlgorithmVersionOption = Annotated[
    str, typer.Option("--algorithm-version", help="Algorithm version.")
]
SegFileArgument = Annotated[Path, typer.Argument(metavar="SEG", help="SEG file.")]
AllowNonuniformOption = Annotated[
    bool,
    typer.Option(
        "--allow-nonuniform",
        help="Accept a series whose slices are unevenly spaced (a slice may be missing): "
        "the volume uses the mean spacing, DICOM results keep each slice's position.",
    ),
]


def read_source(
    folder: Path, series: str | None = None, *, allow_nonuniform: bool = False
) -> Series:
    """Read the source series of a command (``--source``, ``--series``, ``--allow-nonuniform``)."""
    from radbridge.io.series import read_series

    return read_series(
        folder, series_instance_uid=series, allow_nonuniform_spacing=allow_nonuniform
    )


_APP_SETTINGS: dict[str, Any] = {
    "name": "radbridge",
    "help": "Machine-learning results as DICOM, and a gateway that brings them to the PACS.",
    "no_args_is_help": True,
    "add_completion": True,  # --install-completion / --show-completion (docs/cli.md)
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,  # plain help: rich doubled `radbridge --help`'s time
    "cls": PlainGroup,  # plain option values converted without pydantic (cli/coerce.py)
}
app = typer.Typer(**_APP_SETTINGS)


def command_group(name: str, help_text: str) -> typer.Typer:
    """Create the ``radbridge NAME`` command group (plain help, like the root) and register it."""
    group = typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None, cls=PlainGroup)
    app.add_typer(group, name=name)
    return group


#: Series options of the encode commands (dcmqi's meta.json sets them too).
SeriesDescriptionOption = Annotated[
    str | None, typer.Option("--series-description", help="Series Description of the result.")
]
SeriesNumberOption = Annotated[
    int | None, typer.Option("--series-number", min=0, help="Series Number of the result.")
]
ContentCreatorOption = Annotated[
    str | None,
    typer.Option("--content-creator", help="Content Creator's Name (DICOM PN, e.g. Doe^Jane)."),
]

#: Series defaults of the encoders the series options above start from, by output kind.
#: (tests/cli/test_series_options.py checks them against the encoders' own defaults)
_SERIES_DEFAULTS: dict[str, dict[str, Any]] = {
    "seg": {"series_description": "Segmentation", "content_label": "SEGMENTATION"},
    "sr": {"series_description": "radbridge measurements", "series_number": 301},
    "pm": {"series_description": "Parametric Map", "content_label": "MAP", "series_number": 400},
    "rtstruct": {"series_description": "RT Structure Set", "series_number": 301},
    "ko": {"series_description": "radbridge key images", "series_number": 302},
}


def series_fields(
    description: str | None, number: int | None, creator: str | None
) -> dict[str, Any]:
    """Return the SeriesOptions fields the series options of a command set."""
    given = {
        "series_description": description,
        "series_number": number,
        "content_creator_name": creator,
    }
    return {key: value for key, value in given.items() if value is not None}


def encode_one(
    source: Series | Slide,
    result: ModelResult,
    output: Any,
    *,
    profile: str | None = None,
    series: dict[str, Any] | None = None,
) -> Dataset:
    """Encode one output of :mod:`radbridge.results` (what every ``encode`` command does).

    ``series`` holds SeriesOptions fields (description, number, creator, ...): given,
    they replace the encoder's defaults for this output kind.
    """
    from radbridge.iods.common import SeriesOptions
    from radbridge.results import ResultOptions, encode_results

    options = ResultOptions(profile=profile)
    if series:
        fields = {**_SERIES_DEFAULTS.get(output.kind, {}), **series}
        options = ResultOptions(profile=profile, series={output.kind: SeriesOptions(**fields)})
    objects = encode_results(source, result, [output], options)
    return objects[output.kind]


def identity(ds: Dataset) -> dict[str, str]:
    """Return the SOP Instance, Series and Study Instance UIDs of ``ds`` (``info --json``)."""
    return {
        "sop_instance_uid": str(ds.get("SOPInstanceUID", "")),
        "series_instance_uid": str(ds.get("SeriesInstanceUID", "")),
        "study_instance_uid": str(ds.get("StudyInstanceUID", "")),
    }


def object_report(
    ds: Dataset, output: Path, what: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return what ``--json`` prints for a written object (see :func:`write_object`)."""
    return {
        "output": str(output),
        **identity(ds),
        "modality": str(ds.get("Modality", "")),
        "summary": what,
        **(details or {}),
    }


def write_object(
    ds: Dataset,
    output: Path,
    what: str,
    *,
    as_json: bool = False,
    details: dict[str, Any] | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Save ``ds`` to ``output`` (folders created) and say what was written.

    With ``as_json`` the same facts are printed as one JSON object: ``output``,
    the UIDs, ``modality``, ``summary`` (the text line's description) and ``details``.
    ``quiet`` prints nothing (a command writing several objects prints them together);
    the report is returned either way.
    """
    from radbridge.cli.output import emit, say
    from radbridge.io.part10 import save_part10

    output.parent.mkdir(parents=True, exist_ok=True)
    save_part10(ds, output)  # ds.save_as's bytes, without copying large pixel data twice
    report = object_report(ds, output, what, details)
    if quiet:
        return report
    if as_json:
        emit(report)
    else:
        say(f"wrote {output}: {what}, SOP Instance UID {ds.SOPInstanceUID}")
    return report


def write_volume(volume: Volume, output: Path) -> None:
    """Save a decoded volume, folders created: ``.npy`` (the array alone), NIfTI or NRRD.

    Any suffix but ``.npy`` goes to :func:`radbridge.io.nifti.write_image`.
    """
    import numpy as np

    from radbridge.io.nifti import write_image

    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".npy":
        np.save(output, volume.array)
    else:
        write_image(volume, output)


def _print_version(value: bool) -> None:
    if value:
        from radbridge._version import __version__

        typer.echo(f"radbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            show_default=False,
            help="More log output: -v radbridge's INFO, -vv its DEBUG, -vvv every library's.",
        ),
    ] = 0,
    quiet: Annotated[
        bool,
        typer.Option("--quiet", "-q", help="Print errors only: no report, no progress bar."),
    ] = False,
    log_file: Annotated[
        Path | None,
        typer.Option(
            "--log-file", metavar="FILE", help="Append the log to FILE instead of stderr."
        ),
    ] = None,
) -> None:
    """Set up logging (UIDs, counts and timings only; never patient data)."""
    from radbridge.cli.output import configure
    from radbridge.net import quiet_pynetdicom

    configure(quiet=quiet, verbose=verbose, log_file=log_file)
    quiet_pynetdicom()  # even with -vvv: its INFO lines carry C-FIND/C-GET/C-MOVE identifiers


def _register() -> None:
    # Imported here so each module can import `app` from this package.
    from radbridge.cli import (  # noqa: F401
        ann,
        batch,
        demo,
        gateway,
        gsps,
        info,
        legacy,
        net,
        phantom,
        pm,
        qr,
        render,
        rtstruct,
        seg,
        sr,
        wsi,
    )


_register()


def _one_line(text: str) -> str:
    """Escape control characters: a damaged file's values never break or drive the terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _usage(exc: RadbridgeError) -> bool:
    """Whether ``exc`` is about a command-line option's value (a usage error: exit 2)."""
    from radbridge.errors import ConfigError

    return isinstance(exc, ConfigError) and str(getattr(exc, "attribute", "")).startswith("--")


def app_for(args: list[str]) -> typer.Typer:
    """Return the app, or one with only the group ``args`` start with (``seg``, ``sr``, ...).

    Typer builds the options of every command it holds on each run (~0.04 s for all of
    radbridge's, ~0.006 s for one group's); ``radbridge seg encode ...`` needs one group.
    The root's options and callback stay; anything else gets the whole app.
    """
    group = next((g for g in app.registered_groups if args and g.name == args[0]), None)
    if group is None:
        return app
    narrow = typer.Typer(**_APP_SETTINGS)
    narrow.registered_callback = app.registered_callback
    narrow.registered_groups = [group]
    return narrow


#: Commands that run models, here or in worker processes they start: BLAS keeps its threads.
_MODEL_COMMANDS = frozenset({"gateway", "batch", "demo"})
#: What OpenBLAS (NumPy's BLAS) reads for its thread count, in its order.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")


def one_blas_thread(args: list[str]) -> bool:
    """Have NumPy's OpenBLAS start one thread, for a command that does no linear algebra.

    OpenBLAS starts a thread per core when NumPy is imported, and they spin while
    idle: on two cores ``radbridge seg decode`` of a label map took 0.45 s with
    them and 0.41 s without (CPU 0.55 -> 0.41 s). radbridge's commands multiply
    4x4 matrices at most, so the CLI sets ``OPENBLAS_NUM_THREADS=1`` before NumPy
    is imported. Not when the user set a thread count (any of :data:`_BLAS_THREADS`),
    not for commands that run models (``gateway``, ``batch``, ``demo``: a model may
    use BLAS, in this process or in the workers that inherit the setting), and
    not when NumPy is already imported (then it is too late, and the process is
    not the CLI's own). Returns whether it was set.

    Examples
    --------
    >>> one_blas_thread(["gateway", "run", "--config", "g.toml"])
    False
    """
    if "numpy" in sys.modules or any(name in os.environ for name in _BLAS_THREADS):
        return False
    if _MODEL_COMMANDS.intersection(args):
        return False
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    return True


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    Parameters
    ----------
    argv
        Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        0 on success, 1 when radbridge reported an error, 2 on a usage error (an
        unknown option, a missing or bad value, a :class:`~radbridge.errors.ConfigError`
        about an option ``--NAME``).

    Notes
    -----
    Run as a program (``argv`` is ``None``), it first applies :func:`one_blas_thread`
    and :func:`radbridge.cli.deferred.defer_optional_imports`.
    """
    from radbridge.cli.output import reset

    args = sys.argv[1:] if argv is None else list(argv)
    if argv is None:  # a process of its own (python -m radbridge, the radbridge script)
        from radbridge.cli.deferred import defer_optional_imports

        one_blas_thread(args)
        defer_optional_imports(args)
    try:
        app_for(args)(args=args, prog_name="radbridge")
    except RadbridgeError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2 if _usage(exc) else 1
    except OSError as exc:
        if exc.filename is None:  # not about a file: a bug or a network fault, shown whole
            raise
        # -o naming a folder, a read-only or full disk: the file and why, not a traceback
        print(f"error: {_one_line(str(exc.filename))}: {exc.strerror}", file=sys.stderr)
        return 1
    except SystemExit as exc:
        if exc.code is None:
            return 0
        return exc.code if isinstance(exc.code, int) else 1
    finally:
        reset()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
