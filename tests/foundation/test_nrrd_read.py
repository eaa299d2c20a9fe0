"""radbridge's NRRD reader against SimpleITK (the outside reader) on the same files.

Files come from SimpleITK's writer, radbridge's own writer and hand-written headers
(RAS space, big-endian, several gzip members); dcmqi's label maps are compared in
tests/seg/test_seg_peers.py.
Every case runs with ISA-L's gzip and with zlib's.
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radbridge.errors import DicomReadError
from radbridge.geometry import Volume
from radbridge.io import nrrd
from radbridge.io.nifti import read_images, volume_from_sitk, volume_to_sitk
from radbridge.io.nrrd import read_nrrd, write_nrrd
from tests.foundation.test_nrrd import oblique_affine


@pytest.fixture(params=["isal", "zlib"], autouse=True)
def gzip_module(request, monkeypatch):
    """Run each test with ISA-L's gzip (the default here) and with zlib's."""
    if request.param == "zlib":
        monkeypatch.setattr(nrrd, "GZIP", zlib)
    else:
        assert nrrd.GZIP is not zlib, "python-isal is a dependency: it must be installed"
    return request.param


def same_as_simpleitk(path: Path) -> Volume:
    """Read ``path`` with both readers; assert the same values, type and geometry."""
    ours = read_nrrd(path)
    assert ours is not None, f"{path.name} was left to SimpleITK"
    theirs = volume_from_sitk(sitk.ReadImage(str(path)))
    assert ours.array.dtype == theirs.array.dtype
    np.testing.assert_array_equal(ours.array, theirs.array)
    np.testing.assert_allclose(ours.affine, theirs.affine, rtol=0, atol=1e-12)
    return ours


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(
    "dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.float32, np.float64]
)
def test_files_simpleitk_writes(tmp_path, dtype, compress):
    rng = np.random.default_rng(7)
    array = (rng.random((6, 5, 7)) * 100).astype(dtype)
    path = tmp_path / "itk.nrrd"
    sitk.WriteImage(volume_to_sitk(Volume(array, oblique_affine())), str(path), compress)
    back = same_as_simpleitk(path)
    np.testing.assert_array_equal(back.array, array)


def test_files_radbridge_writes(tmp_path):
    labels = np.zeros((9, 16, 12), np.uint8)
    labels[2:7, 3:12, 4:9] = 3
    path = write_nrrd(Volume(labels, oblique_affine()), tmp_path / "ours.nrrd")
    np.testing.assert_array_equal(same_as_simpleitk(path).array, labels)


def handwritten(tmp_path: Path, header: list[str], data: bytes, name: str = "h.nrrd") -> Path:
    path = tmp_path / name
    path.write_bytes(("\n".join(["NRRD0004", *header]) + "\n\n").encode() + data)
    return path


def test_ras_space_is_turned_into_lps_as_simpleitk_does(tmp_path):
    values = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    path = handwritten(
        tmp_path,
        [
            "type: short",
            "dimension: 3",
            "space: right-anterior-superior",
            "sizes: 4 3 2",
            "space directions: (-0.5,0.1,0) (0.2,0.9,0) (0,0,2.5)",
            "kinds: domain domain domain",
            "endian: big",
            "encoding: raw",
            "space origin: (10.5,-20.25,30)",
        ],
        values.astype(">i2").tobytes(),
    )
    back = same_as_simpleitk(path)
    np.testing.assert_array_equal(back.array, values)
    np.testing.assert_allclose(back.affine[:3, 3], [-10.5, 20.25, 30.0])


def test_several_gzip_members_are_read_as_one_stream(tmp_path):
    values = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    data = gzip.compress(values.tobytes()[:25]) + gzip.compress(values.tobytes()[25:])
    header = [
        "type: uint8",
        "dimension: 3",
        "space: left-posterior-superior",
        "sizes: 5 4 3",
        "space directions: (1,0,0) (0,1,0) (0,0,1)",
        "encoding: gzip",
        "space origin: (0,0,0)",
    ]
    back = same_as_simpleitk(handwritten(tmp_path, header, data))
    np.testing.assert_array_equal(back.array, values)


def test_what_this_reader_leaves_to_simpleitk(tmp_path):
    # 4-D (Slicer's multi-segment .seg.nrrd layout: one component per segment)
    stacked = tmp_path / "stacked.nrrd"
    image = sitk.GetImageFromArray(np.zeros((2, 3, 4, 5), np.uint8), isVector=True)
    sitk.WriteImage(image, str(stacked), True)
    ascii_ = handwritten(
        tmp_path,
        [
            "type: uint8",
            "dimension: 3",
            "space: LPS",
            "sizes: 2 1 1",
            "space directions: (1,0,0) (0,1,0) (0,0,1)",
            "encoding: ascii",
        ],
        b"1 2\n",
        "ascii.nrrd",
    )
    scanner = handwritten(
        tmp_path,
        [
            "type: uint8",
            "dimension: 3",
            "space: scanner-xyz",
            "sizes: 2 1 1",
            "space directions: (1,0,0) (0,1,0) (0,0,1)",
            "encoding: raw",
        ],
        b"\x01\x02",
        "scanner.nrrd",
    )
    for path in (stacked, ascii_, scanner):
        assert read_nrrd(path) is None, path.name
    assert [v.shape for v in read_images(stacked)] == [(2, 3, 4)] * 5  # SimpleITK read it
    assert read_images(ascii_)[0].array.ravel().tolist() == [1, 2]


def _label_file(tmp_path: Path) -> tuple[Path, bytes, int]:
    values = np.zeros((20, 30, 40), np.uint8)
    values[5:15, 5:25, 5:35] = 7
    path = write_nrrd(Volume(values, np.eye(4)), tmp_path / "m.nrrd")
    raw = path.read_bytes()
    return path, raw, raw.index(b"\n\n") + 2


def test_truncated_gzip_names_the_file_and_attribute(tmp_path):
    path, raw, start = _label_file(tmp_path)
    path.write_bytes(raw[: start + (len(raw) - start) // 2])
    with pytest.raises(DicomReadError, match="cannot be inflated") as caught:
        read_images(path)
    assert caught.value.path == str(path) and caught.value.attribute == "encoding"


def test_data_shorter_or_longer_than_the_sizes_is_refused(tmp_path):
    path, raw, _ = _label_file(tmp_path)
    for sizes in ("sizes: 40 30 21", "sizes: 40 30 19"):
        path.write_bytes(raw.replace(b"sizes: 40 30 20", sizes.encode()))
        with pytest.raises(DicomReadError, match="bytes of data where") as caught:
            read_images(path)
        assert caught.value.attribute == "sizes"


def test_raw_data_cut_short_is_refused(tmp_path):
    values = np.arange(24, dtype=np.uint16)
    header = [
        "type: ushort",
        "dimension: 3",
        "space: LPS",
        "sizes: 4 3 2",
        "endian: little",
        "space directions: (1,0,0) (0,1,0) (0,0,1)",
        "encoding: raw",
    ]
    path = handwritten(tmp_path, header, values.tobytes()[:-3])
    with pytest.raises(DicomReadError, match=r"45 bytes of data where .* need 48"):
        read_images(path)


def test_garbage_instead_of_gzip_is_refused(tmp_path):
    path, raw, start = _label_file(tmp_path)
    path.write_bytes(raw[:start] + b"\x00not gzip at all" * 50)
    with pytest.raises(DicomReadError, match="cannot be inflated"):
        read_images(path)


def test_a_small_file_claiming_a_huge_volume_allocates_only_what_it_holds(tmp_path):
    bomb = gzip.compress(bytes(50_000_000), 9)  # ~50 KB on disk, 50 MB inflated
    header = [
        "type: uint8",
        "dimension: 3",
        "space: LPS",
        "sizes: 100000 100000 100000",
        "space directions: (1,0,0) (0,1,0) (0,0,1)",
        "encoding: gzip",
    ]
    with pytest.raises(DicomReadError, match="50000000 bytes of data where"):
        read_images(handwritten(tmp_path, header, bomb))


def test_a_plain_nrrd_is_read_without_importing_simpleitk(tmp_path):
    path, _, _ = _label_file(tmp_path)
    code = (
        "import sys\n"
        "from radbridge.io.nifti import read_images\n"
        "(v,) = read_images(sys.argv[1])\n"
        "print(v.shape, int(v.array.sum()), 'SimpleITK' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["(20,", "30,", "40)", str(7 * 10 * 20 * 30), "False"]
