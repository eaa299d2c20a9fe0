"""Reading VL Whole Slide Microscopy images: levels, tiles and regions, value for value.

The slides come from tests/wsi/slides.py (pydicom and NumPy only), which knows each
level's full matrix; highdicom's slide-microscopy tiles (../shared/interop) are read
against pydicom's own decoding, and wsidicom reads the same regions as radbridge.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from radbridge.errors import GridMismatchError, MixedSeriesError, UnsupportedObjectError
from radbridge.wsi import read_slide
from tests.peers import dciodvfy

from .slides import write_slide


@pytest.mark.parametrize("name", ["full_slide", "sparse_slide", "fluorescence_slide"])
def test_every_level_reads_back_exactly(request, name):
    written = request.getfixturevalue(name)
    slide = read_slide(written.folder)
    assert len(slide.levels) == len(written.matrices)
    for level, matrices in zip(slide.levels, written.matrices, strict=True):
        assert level.shape == matrices[0].shape[:2]
        assert len(level.optical_paths) == len(matrices)
        for path, matrix in enumerate(matrices):
            np.testing.assert_array_equal(level.read(optical_path=path), matrix)


def test_regions_cross_tile_borders_and_the_matrix_edge(full_slide):
    level = read_slide(full_slide.folder).level(0)
    matrix = full_slide.matrices[0][0]
    np.testing.assert_array_equal(level.region(60, 50, 70, 90), matrix[60:130, 50:140])
    edge = level.region(280, 400, 40, 40)  # runs past the matrix: background beyond
    np.testing.assert_array_equal(edge[:20, :20], matrix[280:, 400:])
    assert (edge[20:] == 255).all() and (edge[:, 20:] == 255).all()


def test_omitted_tiles_read_as_background(sparse_slide):
    level = read_slide(sparse_slide.folder).level(0)
    assert level.tile_organization == "TILED_SPARSE"
    grid = level.grid
    missing = [
        (r, c)
        for r in range(grid.tiles_down)
        for c in range(grid.tiles_across)
        if not level.has_tile(r, c)
    ]
    assert missing, "the generator leaves background tiles out"
    r, c = missing[0]
    assert (level.tile(r, c) == 255).all()
    assert level.tile_count == grid.tile_count - len(missing)


def test_optical_paths_are_described(fluorescence_slide):
    level = read_slide(fluorescence_slide.folder).level(1)
    assert [p.identifier for p in level.optical_paths] == ["1", "2"]
    assert [p.illumination_wavelength for p in level.optical_paths] == [400.0, 500.0]
    np.testing.assert_array_equal(
        level.tile(1, 1, optical_path="2"), fluorescence_slide.matrices[1][1][64:128, 64:128]
    )


def test_highdicom_slide_tiles_match_pydicom(interop):
    path = interop / "images" / "highdicom" / "sm_image_dots.dcm"
    level = read_slide(path).level(0)
    frames = pydicom.dcmread(path).pixel_array
    for index in (0, 7, 24):
        r, c = divmod(index, level.grid.tiles_across)
        np.testing.assert_array_equal(level.tile(r, c), frames[index])


@pytest.mark.peer
def test_jpeg_ybr_tiles_read_as_rgb_as_wsidicom_reads_them(tmp_path):
    """JPEG tiles stored as YBR_FULL_422 (most scanners) come back as RGB, not Y/Cb/Cr."""
    from wsidicom import WsiDicom

    written = write_slide(tmp_path, levels=2, jpeg=True)
    slide = read_slide(tmp_path)
    level = slide.level(0)
    mine = level.region(5, 3, 120, 200)
    with WsiDicom.open(tmp_path) as theirs:
        region = np.asarray(theirs.read_region((3, 5), 0, (200, 120)).convert("RGB"))
    assert np.abs(mine.astype(int) - region).max() <= 1  # libjpeg rounds its own conversion
    truth = written.matrices[0][0][5:125, 3:203].astype(int)
    assert np.abs(mine.astype(int) - truth).mean() < 3  # lossy, but the same colours
    glass = (written.matrices[0][0] == 255).all(axis=-1)  # white: YCbCr 255, 128, 128
    assert level.read()[glass].mean() > 250


@pytest.mark.peer
def test_focal_planes_in_separate_images_are_all_read(tmp_path):
    """A level of two TILED_FULL images, one focal plane each (Z 0 and 2 µm), as wsidicom
    writes z-stacks split across instances: both planes are read, lowest Z first (the
    second image's tiles were dropped as duplicates of the first's plane 0)."""
    import copy

    from pydicom.uid import generate_uid
    from wsidicom import WsiDicom

    written = write_slide(tmp_path, levels=1)
    image = pydicom.dcmread(written.files[0][0])
    upper = copy.deepcopy(image)
    upper.SOPInstanceUID = upper.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    upper.TotalPixelMatrixOriginSequence[0].ZOffsetInSlideCoordinateSystem = 2.0
    upper.PixelData = (255 - image.pixel_array).tobytes()
    upper.save_as(tmp_path / "level0-z2.dcm", enforce_file_format=True)
    level = read_slide(tmp_path).level(0)
    assert level.focal_planes == 2
    matrix = written.matrices[0][0]
    np.testing.assert_array_equal(level.read(focal_plane=0), matrix)
    np.testing.assert_array_equal(level.read(focal_plane=1), 255 - matrix)
    with WsiDicom.open(tmp_path) as theirs:
        assert theirs.levels[0].focal_planes == [0.0, 2.0]
        region = np.asarray(theirs.read_region((3, 5), 0, (80, 50), z=2.0))
    np.testing.assert_array_equal(level.region(5, 3, 50, 80, focal_plane=1), region)


def test_wrong_requests_name_the_problem(full_slide, tmp_path):
    slide = read_slide(full_slide.folder)
    with pytest.raises(GridMismatchError, match="level 5 does not exist"):
        slide.level(5)
    with pytest.raises(GridMismatchError, match="outside the grid"):
        slide.level(0).tile(99, 0)
    with pytest.raises(GridMismatchError, match="no optical path 'x'"):
        slide.level(0).tile(0, 0, optical_path="x")
    (tmp_path / "note.txt").write_text("not DICOM")
    with pytest.raises(UnsupportedObjectError, match="no VL Whole Slide Microscopy image"):
        read_slide(tmp_path)


def test_two_slides_in_one_folder_need_a_series(tmp_path):
    first = write_slide(tmp_path / "a", levels=1)
    write_slide(tmp_path / "b", levels=1, seed=3)
    with pytest.raises(MixedSeriesError, match="series_instance_uid"):
        read_slide(tmp_path)
    chosen = read_slide(tmp_path, series_instance_uid=first.series_uid)
    np.testing.assert_array_equal(chosen.level(0).read(), first.matrices[0][0])


@pytest.mark.peer
@pytest.mark.parametrize("name", ["full_slide", "sparse_slide", "fluorescence_slide"])
def test_wsidicom_reads_the_same_regions(request, name):
    from wsidicom import WsiDicom

    written = request.getfixturevalue(name)
    ours = read_slide(written.folder)
    with WsiDicom.open(written.folder) as theirs:
        assert len(theirs.levels) == len(ours.levels)
        for index, level in enumerate(ours.levels):
            height, width = min(50, level.shape[0] - 5), min(80, level.shape[1] - 3)
            for path in range(len(level.optical_paths)):
                region = np.asarray(
                    theirs.read_region((3, 5), index, (width, height), path=str(path + 1))
                )
                mine = level.region(5, 3, height, width, optical_path=path)
                region = region[..., 0] if mine.ndim == 2 and region.ndim == 3 else region
                np.testing.assert_array_equal(region, mine)


@pytest.mark.peer
def test_the_test_slides_are_valid(full_slide, fluorescence_slide):
    """The generator's output passes dciodvfy (so readers are tested on conformant input)."""
    for files in [*full_slide.files, *fluorescence_slide.files]:
        assert dciodvfy(files[0]).errors == [], files[0]
