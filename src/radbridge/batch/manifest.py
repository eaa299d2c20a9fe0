r"""The batch manifest: one CSV row per result to encode.

Columns (header required; order free):

=========  ========  ============================================================
column     required  meaning
=========  ========  ============================================================
source     yes       folder of the source series (relative to the manifest), or a
                     DICOMweb series URL ``https://HOST/dicom-web/studies/UID/series/UID``
                     (fetched once with WADO-RS into ``--out/.sources/``)
kind       yes       what to encode: ``seg``, ``rtstruct``, ``gsps``, ``sr``, ``pm`` or
                     ``slide-seg`` (a SEG on a level of a whole-slide image)
input      yes       the mask (seg, rtstruct, gsps; slide-seg: ``.npy`` on the level),
                     report JSON (sr, docs/sr.md) or map (pm) file, relative to the
                     manifest
labels     seg       ``labels.json`` for SEG, RTSTRUCT, GSPS and slide SEG rows
output     no        relative output path inside ``--out`` (default ``<id>.dcm``);
                     one that leads outside fails its row
id         no        row identifier (default: row number); unique
series     no        Series Instance UID of the source series, when the folder holds
                     several image series (a whole study exported to one folder)
options    no        JSON object of encoder options, e.g. ``{"type": "labelmap"}``;
                     sr rows: ``{"seg": "seg.dcm"}`` (relative to the report);
                     pm rows (required): ``{"units": UCUM, "quantity": code}``,
                     the code as ``"DCM:130402:Class activation"`` or an object
=========  ========  ============================================================

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "m.csv").write_text("source,kind,input,labels\nct1,seg,ct1.nii.gz,l.json\n")
>>> row, = read_manifest(folder / "m.csv")
>>> row.id, row.kind, row.source.name, row.output_name
('1', 'seg', 'ct1', '1.dcm')
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from radbridge.errors import ConfigError, RadbridgeError

__all__ = ["KINDS", "ManifestRow", "read_manifest"]

#: Kinds of rows the batch understands.
KINDS = frozenset({"seg", "rtstruct", "gsps", "sr", "pm", "slide-seg"})
_REQUIRED = ("source", "kind", "input")
_SERIES_URL = re.compile(
    r"^(?P<base>https?://.+?)/studies/(?P<study>[0-9.]+)/series/(?P<series>[0-9.]+)/?$"
)


@dataclass(frozen=True)
class ManifestRow:
    """One row of the manifest, with paths resolved against the manifest's folder."""

    id: str
    kind: str
    source: Path
    input: Path
    labels: Path | None = None
    output: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    source_url: str | None = None
    series: str | None = None

    @property
    def output_name(self) -> str:
        """Output path relative to the batch output folder."""
        return self.output or f"{self.id}.dcm"


def read_manifest(path: str | os.PathLike[str]) -> list[ManifestRow]:
    """Read and check a manifest CSV.

    Raises
    ------
    ConfigError
        Missing columns, unknown kinds, duplicate ids or outputs, bad options JSON —
        the message names the row.
    """
    p = Path(path)
    # Absolute and normalised: rows reach Dask workers running in other folders, and
    # their sidecars record the same paths however the manifest's path was spelled.
    base = Path(os.path.abspath(p)).parent
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte order mark, which would
        # otherwise become part of the first column's name
        with p.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ConfigError(
                    f"manifest lacks columns {missing}",
                    path=p,
                    attribute="header",
                    hint="the first line must name at least: source,kind,input",
                )
            rows = [
                _row(base, number, raw, p)
                for number, raw in enumerate(reader, start=1)
                if any((value or "").strip() for value in raw.values())  # not ",,,," (Excel)
            ]
    except RadbridgeError:
        raise
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise ConfigError(
            "no manifest file here", path=p, hint="give the path of the manifest CSV file"
        ) from exc
    except (OSError, ValueError, csv.Error) as exc:  # ValueError: not UTF-8 text
        raise ConfigError(
            f"cannot read the manifest ({type(exc).__name__}: {str(exc)[:120]})",
            path=p,
            hint="write it as a UTF-8 CSV file",
        ) from exc
    _check_unique(rows, p)
    return rows


def _row(base: Path, number: int, raw: dict[str, str | None], path: Path) -> ManifestRow:
    where = f"row {number}"
    values = {k: (v or "").strip() for k, v in raw.items() if k is not None}
    for column in _REQUIRED:
        if not values.get(column):
            raise ConfigError(f"{where} has no {column}", path=path, attribute=column)
    kind = values["kind"].lower()
    if kind not in KINDS:
        raise ConfigError(
            f"{where}: unknown kind {values['kind']!r}",
            path=path,
            attribute="kind",
            hint=f"use one of {', '.join(sorted(KINDS))}",
        )
    options: dict[str, Any] = {}
    if values.get("options"):
        try:
            options = json.loads(values["options"])
        except (ValueError, RecursionError) as exc:  # not JSON, or nested too deep
            raise ConfigError(
                f"{where}: options are not JSON ({exc})", path=path, attribute="options"
            ) from exc
        if not isinstance(options, dict):
            raise ConfigError(
                f"{where}: options must be a JSON object", path=path, attribute="options"
            )
    labels = base / values["labels"] if values.get("labels") else None
    if kind in ("seg", "rtstruct", "gsps", "slide-seg") and labels is None:
        raise ConfigError(f"{where}: a {kind} row needs labels", path=path, attribute="labels")
    source_url = None
    source = base / values["source"]
    if values["source"].lower().startswith(("http://", "https://")):
        match = _SERIES_URL.match(values["source"])
        if not match:
            raise ConfigError(
                f"{where}: {values['source']!r} is not a DICOMweb series URL",
                path=path,
                attribute="source",
                hint="write BASE/studies/STUDY_UID/series/SERIES_UID",
            )
        source_url = values["source"].rstrip("/")
        source = Path(".sources") / match["study"] / match["series"]
    return ManifestRow(
        id=values.get("id") or str(number),
        kind=kind,
        source=source,
        source_url=source_url,
        input=base / values["input"],
        labels=labels,
        output=values.get("output") or None,
        options=options,
        series=values.get("series") or None,
    )


def _check_unique(rows: list[ManifestRow], path: Path) -> None:
    for attribute, values in (
        ("id", [r.id for r in rows]),
        # normalised: "a.dcm", "./a.dcm" and "x/../a.dcm" are one file
        ("output", [os.path.normpath(r.output_name) for r in rows]),
    ):
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise ConfigError(
                    f"duplicate {attribute} {value!r}",
                    path=path,
                    attribute=attribute,
                    hint=f"give every row its own {attribute}",
                )
            seen.add(value)
