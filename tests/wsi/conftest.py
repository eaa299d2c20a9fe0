"""Fixtures for slide-microscopy tests: synthetic slides written by tests/wsi/slides.py."""

from __future__ import annotations

import pytest

from .slides import Slide, write_slide


@pytest.fixture(scope="package")
def full_slide(tmp_path_factory) -> Slide:
    """RGB brightfield, 3 levels, TILED_FULL, native."""
    return write_slide(tmp_path_factory.mktemp("full"))


@pytest.fixture(scope="package")
def sparse_slide(tmp_path_factory) -> Slide:
    """RGB brightfield, 3 levels, TILED_SPARSE (shuffled frames), background tiles left out."""
    return write_slide(tmp_path_factory.mktemp("sparse"), sparse=True, omit_background=True)


@pytest.fixture(scope="package")
def fluorescence_slide(tmp_path_factory) -> Slide:
    """Two monochrome optical paths, TILED_SPARSE (every tile, shuffled), RLE Lossless."""
    return write_slide(
        tmp_path_factory.mktemp("fluo"), samples=1, optical_paths=2, sparse=True, rle=True
    )
