"""The synthetic slide (radbridge wsi phantom) is valid and reads the same in wsidicom."""

from __future__ import annotations

import numpy as np
import pytest

from radbridge.cli import main
from radbridge.errors import ConfigError
from radbridge.io.slide_phantom import write_slide_phantom
from radbridge.wsi import read_slide
from tests.peers import dciodvfy


@pytest.mark.peer
def test_phantom_is_valid_and_wsidicom_reads_the_same(tmp_path):
    from wsidicom import WsiDicom

    assert (
        main(
            [
                "wsi",
                "phantom",
                str(tmp_path),
                "--rows",
                "600",
                "--columns",
                "700",
                "--tile",
                "128",
                "--levels",
                "2",
            ]
        )
        == 0
    )
    for path in sorted(tmp_path.glob("level*.dcm")):
        assert dciodvfy(path).errors == [], path
    ours = read_slide(tmp_path)
    matrix = ours.level(0).read()
    assert (matrix != 255).any() and (matrix == 255).any()  # tissue on glass
    with WsiDicom.open(tmp_path) as theirs:
        for index in (0, 1):
            level = ours.level(index)
            region = np.asarray(theirs.read_region((0, 0), index, level.shape[::-1]))
            np.testing.assert_array_equal(region[..., :3], level.read())


def test_same_arguments_same_bytes_and_blank_is_white(tmp_path):
    first = write_slide_phantom(tmp_path / "a", size=(200, 300), tile=64, levels=1, seed=4)
    again = write_slide_phantom(tmp_path / "b", size=(200, 300), tile=64, levels=1, seed=4)
    assert first[0].read_bytes() == again[0].read_bytes()
    write_slide_phantom(tmp_path / "blank", size=(200, 300), tile=64, levels=1, blank=True)
    assert (read_slide(tmp_path / "blank").level(0).read() == 255).all()
    with pytest.raises(ConfigError, match="in tiles of 4"):
        write_slide_phantom(tmp_path / "c", tile=4)
