"""SEGs on a slide level: written TILED_FULL or TILED_SPARSE, read back exactly.

Outside oracles: dciodvfy (0 errors), highdicom (total pixel matrix, value for value),
and the test slides' own per-frame Plane Position (Slide), written by tests/wsi/slides.py
with pydicom only, for the slide coordinates of each tile.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from pydicom.filebase import DicomBytesIO

from radbridge.coding import sct
from radbridge.errors import (
    DecodingError,
    EncodingError,
    GridMismatchError,
    UnsupportedObjectError,
)
from radbridge.iods.common import ReadObject
from radbridge.seg import SegmentDescription
from radbridge.wsi import encode_slide_segmentation, read_slide, read_slide_segmentation
from tests.peers import dciodvfy

from .slides import write_slide


def describe(n: int) -> list[SegmentDescription]:
    return [
        SegmentDescription(
            k,
            f"Region {k}",
            category=sct("49755003", "Morphologically Altered Structure"),
            property_type=sct("108369006", "Neoplasm"),
            algorithm_type="MANUAL",
        )
        for k in range(1, n + 1)
    ]


def labels_on(shape: tuple[int, int]) -> np.ndarray:
    """Two blobs (labels 1 and 2) that leave most tiles empty and cross tile borders."""
    y, x = np.mgrid[0 : shape[0], 0 : shape[1]]
    out = np.zeros(shape, np.uint8)
    out[(y - 70) ** 2 + (x - 90) ** 2 < 40**2] = 1
    out[(y - shape[0] + 30) ** 2 + (x - shape[1] + 20) ** 2 < 25**2] = 2
    return out


def saved(ds, tmp_path, name="seg.dcm"):
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.mark.parametrize("omit", [False, True], ids=["tiled-full", "tiled-sparse"])
@pytest.mark.parametrize("level", [0, 1])
def test_binary_labels_round_trip(full_slide, tmp_path, omit, level):
    slide = read_slide(full_slide.folder)
    labels = labels_on(slide.level(level).shape)
    ds = encode_slide_segmentation(labels, slide, describe(2), level=level, omit_empty_tiles=omit)
    grid = slide.level(level).grid
    assert ds.DimensionOrganizationType == ("TILED_SPARSE" if omit else "TILED_FULL")
    expected = {(k, t) for k in (1, 2) for t in range(grid.tile_count)}
    if omit:
        expected = {
            (k, r * grid.tiles_across + c)
            for k in (1, 2)
            for r in range(grid.tiles_down)
            for c in range(grid.tiles_across)
            if (labels[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64] == k).any()
        }
        assert len(expected) < 2 * grid.tile_count
    assert int(ds.NumberOfFrames) == len(expected)
    path = saved(ds, tmp_path)
    seg = read_slide_segmentation(path)
    assert isinstance(seg, ReadObject) and seg.source == str(path)  # one base for readers
    np.testing.assert_array_equal(seg.mask(), labels)
    np.testing.assert_array_equal(seg.mask(segment=2), labels == 2)
    np.testing.assert_array_equal(
        seg.region(30, 50, 100, 90, segment=1), labels[30:130, 50:140] == 1
    )


@pytest.mark.peer
@pytest.mark.parametrize("omit", [False, True], ids=["tiled-full", "tiled-sparse"])
def test_highdicom_and_dciodvfy_accept_binary(full_slide, tmp_path, omit):
    import highdicom as hd

    slide = read_slide(full_slide.folder)
    labels = labels_on(slide.level(0).shape)
    path = saved(
        encode_slide_segmentation(labels, slide, describe(2), omit_empty_tiles=omit), tmp_path
    )
    assert dciodvfy(path).errors == []
    theirs = hd.seg.segread(path)
    assert theirs.get_total_pixel_matrix(combine_segments=True).tolist() == labels.tolist()
    assert theirs.get_segment_description(2).segment_label == "Region 2"


@pytest.mark.peer
def test_a_tiled_seg_without_dimension_organization_type_is_read(interop):
    """highdicom's seg_image_sm_numbers.dcm: Total Pixel Matrix and per-frame Plane Position
    (Slide), no Dimension Organization Type (Type 3). It was refused as "not tiled"."""
    import highdicom as hd

    path = interop / "seg" / "highdicom" / "seg_image_sm_numbers.dcm"
    assert "DimensionOrganizationType" not in pydicom.dcmread(path, stop_before_pixels=True)
    ours = read_slide_segmentation(path)
    assert ours.organization == "TILED_SPARSE" and len(ours.segments) == 20
    theirs = hd.seg.segread(path)
    drawn = 0
    for number in range(1, 21):
        expected = theirs.get_total_pixel_matrix(segment_numbers=[number])[..., 0] > 0
        drawn += bool(expected.any())
        np.testing.assert_array_equal(ours.mask(segment=number), expected)
    assert drawn >= 19  # one of highdicom's digits is empty


@pytest.mark.peer
def test_a_level_with_two_focal_planes_gives_a_seg_of_one(tmp_path):
    """The SEG holds one plane per segment: Total Pixel Matrix Focal Planes 1, not the level's.

    highdicom orders TILED_FULL frames by focal plane before segment; a SEG that copied
    the level's 2 focal planes was refused by it ("dimensions do not uniquely identify").
    """
    import highdicom as hd

    written = write_slide(tmp_path / "slide", levels=1)
    image = pydicom.dcmread(written.files[0][0])
    frames = image.pixel_array
    image.PixelData = np.concatenate([frames, 255 - frames]).tobytes()  # a second plane
    image.NumberOfFrames, image.TotalPixelMatrixFocalPlanes = 2 * len(frames), 2
    image.save_as(written.files[0][0], enforce_file_format=True)
    slide = read_slide(written.folder)
    assert slide.level(0).focal_planes == 2
    labels = labels_on(slide.level(0).shape)
    ds = encode_slide_segmentation(labels, slide, describe(2))
    assert ds.TotalPixelMatrixFocalPlanes == 1
    path = saved(ds, tmp_path)
    np.testing.assert_array_equal(read_slide_segmentation(path).mask(), labels)
    theirs = hd.seg.segread(path).get_total_pixel_matrix(combine_segments=True)
    np.testing.assert_array_equal(theirs, labels)
    assert dciodvfy(path).errors == []


@pytest.mark.peer
@pytest.mark.parametrize("omit", [False, True], ids=["tiled-full", "tiled-sparse"])
def test_one_segment_is_identified_once_per_frame(full_slide, tmp_path, omit):
    """One segment: shared Segment Identification (TILED_FULL) or per frame (TILED_SPARSE),
    never both (dciodvfy: "Functional Group Sequence already used in Shared...")."""
    import highdicom as hd

    slide = read_slide(full_slide.folder)
    labels = (labels_on(slide.level(0).shape) == 1).astype(np.uint8)
    ds = encode_slide_segmentation(labels, slide, describe(1), omit_empty_tiles=omit)
    path = saved(ds, tmp_path)
    assert dciodvfy(path).errors == []
    theirs = hd.seg.segread(path)
    assert theirs.get_total_pixel_matrix(combine_segments=True).tolist() == labels.tolist()


@pytest.mark.peer
@pytest.mark.parametrize("omit", [False, True], ids=["tiled-full", "tiled-sparse"])
def test_fractional_round_trip_with_highdicom(fluorescence_slide, tmp_path, omit):
    import highdicom as hd

    slide = read_slide(fluorescence_slide.folder)
    shape = slide.level(1).shape
    rng = np.random.default_rng(5)
    probabilities = rng.random((2, *shape))
    probabilities[:, :, : shape[1] // 2] = 0  # empty tiles on the left
    ds = encode_slide_segmentation(
        probabilities,
        slide,
        describe(2),
        level=1,
        segmentation_type="fractional",
        omit_empty_tiles=omit,
        optical_path="2",
    )
    path = saved(ds, tmp_path)
    assert dciodvfy(path).errors == []
    stored = np.rint(probabilities * 255).astype(np.uint8)
    seg = read_slide_segmentation(path)
    np.testing.assert_array_equal(seg.mask(), stored)
    theirs = hd.seg.segread(path).get_total_pixel_matrix(rescale_fractional=False)
    np.testing.assert_array_equal(np.moveaxis(theirs, -1, 0), stored)


def test_sparse_frames_sit_where_the_slide_puts_its_tiles(sparse_slide, tmp_path):
    """Each SEG frame's X/Y offsets equal those the test slide gives the same tile."""
    slide = read_slide(sparse_slide.folder)
    labels = np.ones(slide.level(0).shape, np.uint8)
    seg = pydicom.dcmread(
        saved(
            encode_slide_segmentation(labels, slide, describe(1), omit_empty_tiles=True), tmp_path
        )
    )
    source = pydicom.dcmread(sparse_slide.files[0][0])
    by_tile = {
        (int(p.RowPositionInTotalImagePixelMatrix), int(p.ColumnPositionInTotalImagePixelMatrix)): (
            p.XOffsetInSlideCoordinateSystem,
            p.YOffsetInSlideCoordinateSystem,
        )
        for p in (f.PlanePositionSlideSequence[0] for f in source.PerFrameFunctionalGroupsSequence)
    }
    checked = 0
    for frame in seg.PerFrameFunctionalGroupsSequence:
        position = frame.PlanePositionSlideSequence[0]
        key = (
            int(position.RowPositionInTotalImagePixelMatrix),
            int(position.ColumnPositionInTotalImagePixelMatrix),
        )
        if key in by_tile:
            x, y = by_tile[key]
            assert float(position.XOffsetInSlideCoordinateSystem) == pytest.approx(float(x))
            assert float(position.YOffsetInSlideCoordinateSystem) == pytest.approx(float(y))
            checked += 1
    assert checked > 10
    assert seg.TotalPixelMatrixOriginSequence[0].XOffsetInSlideCoordinateSystem == 20.0
    assert seg.ContainerIdentifier == "SLIDE-1"
    assert seg.SpecimenDescriptionSequence[0].SpecimenUID == "2.25.4242"
    assert seg.FrameOfReferenceUID == sparse_slide.frame_of_reference_uid
    assert seg.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_bad_input_is_refused_with_the_reason(full_slide, fluorescence_slide):
    slide = read_slide(full_slide.folder)
    shape = slide.level(0).shape
    with pytest.raises(GridMismatchError, match="does not cover level 0"):
        encode_slide_segmentation(np.zeros((10, 10), np.uint8), slide, describe(1))
    with pytest.raises(GridMismatchError, match="level 7 does not exist"):
        encode_slide_segmentation(np.zeros(shape, np.uint8), slide, describe(1), level=7)
    with pytest.raises(EncodingError, match="BINARY and FRACTIONAL"):
        encode_slide_segmentation(
            np.zeros(shape, np.uint8), slide, describe(1), segmentation_type="labelmap"
        )
    with pytest.raises(EncodingError, match=r"must lie in \[0, 1\]"):
        encode_slide_segmentation(
            np.full((1, *shape), 1.5), slide, describe(1), segmentation_type="fractional"
        )
    with pytest.raises(EncodingError, match="negative"):
        encode_slide_segmentation(np.full(shape, -1), slide, describe(1))
    with pytest.raises(EncodingError, match=r"holds label 2 .* only segments 1\.\.1"):
        encode_slide_segmentation(labels_on(shape), slide, describe(1))
    with pytest.raises(EncodingError, match="3 segments but 1"):
        encode_slide_segmentation(np.zeros((3, *shape), bool), slide, describe(1))
    fluorescence = read_slide(fluorescence_slide.folder)
    with pytest.raises(GridMismatchError, match="no optical path '9'"):
        encode_slide_segmentation(
            np.zeros(fluorescence.level(0).shape, np.uint8),
            fluorescence,
            describe(1),
            optical_path="9",
        )


def _damaged(ds, **changes):
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def test_damaged_and_foreign_files_are_refused(full_slide, tmp_path):
    slide = read_slide(full_slide.folder)
    labels = labels_on(slide.level(0).shape)
    full = encode_slide_segmentation(labels, slide, describe(2))
    with pytest.raises(DecodingError, match="needs 70 frames, it has 60"):
        read_slide_segmentation(_damaged(full, NumberOfFrames=60))
    sparse = pydicom.dcmread(
        saved(
            encode_slide_segmentation(labels, slide, describe(2), omit_empty_tiles=True), tmp_path
        )
    )
    sparse.PerFrameFunctionalGroupsSequence[0].PlanePositionSlideSequence[
        0
    ].RowPositionInTotalImagePixelMatrix = 5
    with pytest.raises(DecodingError, match="is not a tile"):
        read_slide_segmentation(_damaged(sparse))
    sparse = pydicom.dcmread(tmp_path / "seg.dcm")
    sparse.PerFrameFunctionalGroupsSequence[0].SegmentIdentificationSequence[
        0
    ].ReferencedSegmentNumber = 9
    with pytest.raises(DecodingError, match="segment 9"):
        read_slide_segmentation(_damaged(sparse))
    with pytest.raises(UnsupportedObjectError, match="not a Segmentation"):
        read_slide_segmentation(full_slide.files[0][0])
    flat = pydicom.dcmread(tmp_path / "seg.dcm")
    del flat.TotalPixelMatrixRows
    with pytest.raises(UnsupportedObjectError, match="not tiled"):
        read_slide_segmentation(_damaged(flat))
    seg = read_slide_segmentation(tmp_path / "seg.dcm")
    with pytest.raises(GridMismatchError, match="no segment 3"):
        seg.mask(segment=3)
    with pytest.raises(GridMismatchError, match="out has shape"):
        seg.mask(out=np.zeros((2, 2), np.uint8))


def test_overlapping_segments_read_one_at_a_time(full_slide, tmp_path):
    slide = read_slide(full_slide.folder)
    shape = slide.level(2).shape
    stacked = np.zeros((2, *shape), bool)
    stacked[0, :40] = True
    stacked[1, 30:] = True
    seg = read_slide_segmentation(encode_slide_segmentation(stacked, slide, describe(2), level=2))
    assert seg.dataset.SegmentsOverlap == "UNDEFINED"
    with pytest.raises(DecodingError, match="overlaps"):
        seg.mask()
    np.testing.assert_array_equal(seg.mask(segment=2), stacked[1])
    out = np.lib.format.open_memmap(tmp_path / "mask.npy", "w+", np.bool_, shape)
    assert seg.mask(segment=1, out=out) is out
    np.testing.assert_array_equal(out, stacked[0])


@pytest.mark.peer
@pytest.mark.parametrize("omit", [False, True], ids=["tiled-full", "tiled-sparse"])
def test_frames_of_100_bits_run_on_across_bytes(interop, tmp_path, omit):
    """highdicom's 10x10-pixel tiles: 1-bit frames do not start on byte boundaries."""
    import highdicom as hd

    slide = read_slide(interop / "images" / "highdicom" / "sm_image.dcm")
    labels = np.zeros(slide.level(0).shape, np.uint8)
    labels[3:17, 5:26] = 1
    labels[33:47, 21:40] = 2
    path = saved(
        encode_slide_segmentation(labels, slide, describe(2), omit_empty_tiles=omit), tmp_path
    )
    assert dciodvfy(path).errors == []
    np.testing.assert_array_equal(read_slide_segmentation(path).mask(), labels)
    theirs = hd.seg.segread(path).get_total_pixel_matrix(combine_segments=True)
    np.testing.assert_array_equal(theirs, labels)


def test_one_segments_fractions_tiles_and_regions(full_slide):
    slide = read_slide(full_slide.folder)
    shape = slide.level(2).shape
    fractions = np.zeros(shape)
    fractions[10:40, 20:60] = 0.5
    fractions[12, 22] = 1.0
    seg = read_slide_segmentation(
        encode_slide_segmentation(
            fractions,
            slide,
            describe(1),
            level=2,
            segmentation_type="fractional",
            max_fractional_value=100,
            omit_empty_tiles=True,
        )
    )
    assert seg.max_fractional_value == 100 and seg.organization == "TILED_SPARSE"
    np.testing.assert_array_equal(seg.mask(segment=1), np.rint(fractions * 100).astype(np.uint8))
    assert seg.has_tile(0, 0) and not seg.has_tile(1, 1)
    assert (seg.tile(1, 1) == 0).all()
    assert seg.tile(0, 0)[12, 22] == 100 and seg.tile(0, 0)[10, 20] == 50
    np.testing.assert_array_equal(
        seg.region(30, 50, 20, 30), np.rint(fractions[30:50, 50:80] * 100)
    )
    with pytest.raises(GridMismatchError, match="outside the grid"):
        seg.tile(9, 0)
    with pytest.raises(GridMismatchError, match="empty"):
        seg.region(0, 0, 0, 5)
