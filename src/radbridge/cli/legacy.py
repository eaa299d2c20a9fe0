"""``radbridge legacy``: classic CT/MR/PET series to Legacy Converted Enhanced images."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from radbridge.cli import JsonOption, SeriesOption, SourceOption, command_group, write_object
from radbridge.cli.output import emit

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from radbridge.io.scan import InstanceRecord

legacy_app = command_group(
    "legacy", "Legacy Converted Enhanced CT/MR/PET images: one multi-frame image per series."
)

#: Classic single-frame image classes that have a Legacy Converted Enhanced form.
_CLASSIC = {"1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.1.1.128"}


@legacy_app.command("encode")
def encode(
    source: SourceOption,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Folder for the converted images (one file per series), or a .dcm file "
            "when --source holds one series.",
        ),
    ],
    series: SeriesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Convert each classic CT, MR or PET series in --source to one enhanced multi-frame image."""
    from radbridge.errors import MixedSeriesError
    from radbridge.io.scan import scan
    from radbridge.io.series import load_datasets
    from radbridge.legacy import encode_legacy_enhanced

    index = scan(source)
    chosen = [index.get_series(series)] if series else index.series()
    todo = [s for s in chosen if s.instances and s.instances[0].sop_class_uid in _CLASSIC]
    if not todo:
        raise MixedSeriesError(
            "no classic CT, MR or PET image series to convert",
            path=source,
            attribute="SOPClassUID",
            hint="list what the folder holds with `radbridge info`",
        )
    if output.suffix.lower() == ".dcm" and len(todo) > 1:
        raise typer.BadParameter(
            f"--source holds {len(todo)} series; give a folder, or choose one with --series",
            param_hint="--output",
        )
    # where every instance of --source is: the evidence of the images' references
    elsewhere = [
        _header(r.study_instance_uid, r.series_instance_uid, i)
        for r in index.series()
        for i in r.instances
    ]
    written = []
    for record in todo:
        paths = record.paths
        ds = encode_legacy_enhanced(
            load_datasets(paths), sources=[str(p) for p in paths], referenced=elsewhere
        )
        target = output if output.suffix.lower() == ".dcm" else output / f"{ds.SOPInstanceUID}.dcm"
        written.append(
            write_object(
                ds,
                target,
                f"{ds.SOPClassUID.name}, {int(ds.NumberOfFrames)} frames from series "
                f"{record.series_instance_uid}",
                details={"frame_count": int(ds.NumberOfFrames)},
                quiet=as_json,
            )
        )
    if as_json:
        emit({"objects": written})


def _header(study: str, series: str, instance: InstanceRecord) -> Dataset:
    """Return a header saying where an instance of --source is (for the evidence)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.SOPClassUID, ds.SOPInstanceUID = instance.sop_class_uid, instance.sop_instance_uid
    return ds
