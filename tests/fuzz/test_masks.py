"""Damaged masks never crash ``radbridge seg encode``: success or ``error: ...``.

NRRD first (radbridge's own reader and its SimpleITK fallback), then NIfTI (nibabel),
``.npy`` masks and nnU-Net ``.npz`` probabilities (NumPy).

Seeds are label maps on the fuzz phantom's grid, written by radbridge (gzip, both gzip
implementations read them), by SimpleITK (raw and gzip) and by hand (RAS space,
big-endian 16-bit). Damage: truncation, flipped bytes in the header or the data, and a
header field's value replaced by other text (numbers, huge sizes, vectors, nothing).
Files the NRRD reader hands to SimpleITK are damaged too, so both paths are fuzzed.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given
from hypothesis import strategies as st

from radbridge.geometry import Volume
from radbridge.io.nifti import volume_to_sitk
from radbridge.io.nrrd import write_nrrd
from radbridge.io.series import read_series

from .corpus import check, fuzz_settings, run_reader

FIELDS = (
    "type",
    "dimension",
    "space",
    "sizes",
    "space directions",
    "kinds",
    "endian",
    "encoding",
    "space origin",
)
TEXTS = (
    "",
    "0",
    "-1",
    "3",
    "4 16 16",
    "16 16 4",
    "1000000 1000000 1000000",
    "(1,0,0) (0,1,0)",
    "(nan,0,0) (0,inf,0) (0,0,1)",
    "(0,0,0) (0,0,0) (0,0,0)",
    "short",
    "double",
    "big",
    "gzip",
    "bzip2",
    "raw",
    "right-anterior-superior",
    "scanner-xyz",
    "domain domain domain domain",
    "\x00\xff",
)


@dataclass(frozen=True)
class MaskSeed:
    name: str
    data: bytes

    def __repr__(self) -> str:
        return f"MaskSeed({self.name})"


def _label_map(corpus, segments: int = 2) -> Volume:
    """Labels 1 (and 2) on the fuzz phantom's grid."""
    geometry = read_series(corpus.source).geometry
    labels = np.zeros(geometry.shape, np.uint8)
    labels[1:3, 4:12, 5:11] = 1
    if segments == 2:
        labels[2:4, 6:9, 2:14] = 2
    return Volume.from_geometry(labels, geometry)


@pytest.fixture(scope="module")
def masks(corpus, tmp_path_factory):
    """NRRD label maps on the phantom's grid, and the labels JSON for them."""
    folder = tmp_path_factory.mktemp("mask-seeds")
    volume = _label_map(corpus)
    labels = volume.array
    seeds = [MaskSeed("radbridge-gzip", write_nrrd(volume, folder / "a.nrrd").read_bytes())]
    for compress in (False, True):
        path = folder / f"itk-{compress}.nrrd"
        sitk.WriteImage(volume_to_sitk(volume), str(path), compress)
        seeds.append(MaskSeed(f"simpleitk-{'gzip' if compress else 'raw'}", path.read_bytes()))
    ras = seeds[0].data.replace(b"left-posterior-superior", b"right-anterior-superior")
    seeds.append(MaskSeed("ras-header", ras))
    raw = seeds[1].data  # SimpleITK's raw uchar file: its header, 16-bit big-endian data
    header = _header_swap(raw[: raw.index(b"\n\n") + 2], "type", "unsigned short")
    header = header.replace(b"encoding: raw", b"endian: big\nencoding: raw")
    seeds.append(MaskSeed("raw-16-bit-big", header + labels.astype(">u2").tobytes()))
    names = folder / "labels.json"
    names.write_text(json.dumps({"1": "liver", "2": "spleen"}))
    return seeds, names


def _header_swap(data: bytes, field: str, value: str) -> bytes:
    """Replace one header field's value (the data stays as it is)."""
    end = data.index(b"\n\n")
    lines = data[:end].split(b"\n")
    key = field.encode() + b": "
    lines = [key + value.encode("latin-1") if line.startswith(key) else line for line in lines]
    return b"\n".join(lines) + data[end:]


@dataclass(frozen=True)
class MaskDamage:
    seed: int
    how: str
    where: int
    value: int
    field: int
    text: int

    def apply(self, seeds: list[MaskSeed]) -> tuple[MaskSeed, bytes]:
        seed = seeds[self.seed % len(seeds)]
        data = bytearray(seed.data)
        header_end = data.index(b"\n\n") + 2
        if self.how == "truncate":
            return seed, bytes(data[: self.where % (len(data) + 1)])
        if self.how in ("flip-header", "flip-data"):
            start, stop = (0, header_end) if self.how == "flip-header" else (header_end, len(data))
            if stop > start:
                data[start + self.where % (stop - start)] ^= self.value or 1
            return seed, bytes(data)
        return seed, _header_swap(
            bytes(data), FIELDS[self.field % len(FIELDS)], TEXTS[self.text % len(TEXTS)]
        )


mask_damages = st.builds(
    MaskDamage,
    seed=st.integers(0, 64),
    how=st.sampled_from(["truncate", "flip-header", "flip-data", "field"]),
    where=st.integers(0, 1 << 20),
    value=st.integers(0, 255),
    field=st.integers(0, 64),
    text=st.integers(0, 64),
)


def _encode(corpus, masks, tmp_path: Path, data: bytes) -> list[str]:
    _, names = masks
    mask = tmp_path / "mask.nrrd"
    mask.write_bytes(data)
    return [
        "seg", "encode", "--source", str(corpus.source), "--mask", str(mask),
        "--labels", str(names), "-o", str(tmp_path / "seg.dcm"),
    ]  # fmt: skip


def test_every_seed_encodes(corpus, masks, tmp_path):
    """Undamaged, every seed gives a SEG (so damage is what fails)."""
    for seed in masks[0]:
        outcome = run_reader(_encode(corpus, masks, tmp_path, seed.data))
        assert outcome.code == 0, (seed, outcome.stderr[-1000:])


@fuzz_settings(300)
@given(damage=mask_damages)
def test_damaged_masks_give_clear_errors(corpus, masks, tmp_path, damage):
    seed, data = damage.apply(masks[0])
    argv = _encode(corpus, masks, tmp_path, data)
    check(run_reader(argv), [seed.name, damage.how, *argv])


@pytest.fixture(scope="module")
def other_masks(corpus, tmp_path_factory):
    """The same label map as NIfTI (plain and gzip), .npy, and .npz probabilities."""
    import nibabel as nib

    from radbridge.io.nifti import volume_to_nifti

    folder = tmp_path_factory.mktemp("other-mask-seeds")
    volume = _label_map(corpus, segments=1)
    labels = volume.array
    image = volume_to_nifti(volume)
    nib.save(image, folder / "m.nii")
    np.save(folder / "m.npy", labels)
    probabilities = np.stack([1.0 - labels, labels]).astype(np.float32)
    np.savez(folder / "m.npz", probabilities=probabilities)
    seeds = [
        (".nii", (folder / "m.nii").read_bytes()),
        (".nii.gz", (folder / "m.nii").read_bytes()),  # damaged, then gzipped
        (".npy", (folder / "m.npy").read_bytes()),
        (".npz", (folder / "m.npz").read_bytes()),
    ]
    names = folder / "labels.json"
    names.write_text(json.dumps({"1": "liver"}))
    return seeds, names


@fuzz_settings(300)
@given(damage=mask_damages)
def test_damaged_nifti_and_numpy_masks_give_clear_errors(corpus, other_masks, tmp_path, damage):
    seeds, names = other_masks
    suffix, data = seeds[damage.seed % len(seeds)]
    damaged = bytearray(data)
    if damage.how == "truncate":
        damaged = damaged[: damage.where % (len(damaged) + 1)]
    elif damaged:
        head = 352 if damage.how == "flip-header" else len(damaged)  # the NIfTI-1 header
        damaged[damage.where % min(head, len(damaged))] ^= damage.value or 1
    mask = tmp_path / f"mask{suffix}"
    mask.write_bytes(gzip.compress(bytes(damaged)) if suffix == ".nii.gz" else bytes(damaged))
    argv = [
        "seg", "encode", "--source", str(corpus.source), "--mask", str(mask),
        "--labels", str(names), "-o", str(tmp_path / "seg.dcm"),
    ]  # fmt: skip
    if suffix == ".npz":
        argv += ["--type", "fractional"]
    check(run_reader(argv), [suffix, damage.how, *argv])
