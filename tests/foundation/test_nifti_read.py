"""Reading NIfTI masks: the voxels once, damage named, nibabel as the oracle."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from nibabel.arrayproxy import ArrayProxy

from radbridge.errors import DicomReadError
from radbridge.io.nifti import read_image, read_images


@pytest.fixture
def mask_file(tmp_path):
    data = (np.random.default_rng(3).random((40, 30, 20)) > 0.5).astype(np.uint8)
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(data, np.diag([0.8, 0.9, 2.5, 1.0])), path)
    return path, data


@pytest.mark.parametrize("four_d", [False, True], ids=["3d", "4d"])
def test_the_voxels_are_read_once(tmp_path, monkeypatch, four_d):
    # a .nii.gz is decompressed on every read of its data: twice costs a mask's whole
    # read again (0.24 s for 512x512x200); nibabel's own reads are counted
    data = np.zeros((8, 6, 4, 3) if four_d else (8, 6, 4), np.uint8)
    path = tmp_path / "m.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    reads = []
    original = ArrayProxy.__array__

    def counted(self, *args, **kwargs):
        reads.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(ArrayProxy, "__array__", counted)
    volumes = read_images(path)
    assert len(volumes) == (3 if four_d else 1)
    assert len(reads) == 1


def test_the_volume_holds_nibabels_voxels_on_the_swapped_axes(mask_file):
    path, data = mask_file
    volume = read_image(path)
    np.testing.assert_array_equal(volume.array, np.transpose(data, (2, 1, 0)))
    assert volume.spacing == pytest.approx((2.5, 0.9, 0.8))


def test_a_truncated_file_is_a_read_error_naming_it(mask_file):
    path, _ = mask_file
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DicomReadError, match="cannot be read as an image") as caught:
        read_images(path)
    assert caught.value.path == str(path)
