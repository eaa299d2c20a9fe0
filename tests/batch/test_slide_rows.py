"""``slide-seg`` rows: a mask on a level of a whole-slide image, encoded by the batch.

highdicom reads the SEG's total pixel matrix back exactly, dciodvfy reports no error,
and a second run skips the row (its output still verifies).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from radbridge.batch import read_manifest, run_batch
from radbridge.io.slide_phantom import write_slide_phantom
from radbridge.wsi import read_slide
from tests.peers import dciodvfy


@pytest.mark.peer
def test_slide_seg_rows(tmp_path):
    import highdicom as hd

    write_slide_phantom(tmp_path / "slide", size=(400, 600), tile=128, levels=2, seed=2)
    shape = read_slide(tmp_path / "slide").level(1).shape
    mask = np.zeros(shape, np.uint8)
    mask[20:90, 30:140] = 1
    mask[150:190, 200:290] = 2
    np.save(tmp_path / "mask.npy", mask)
    (tmp_path / "labels.json").write_text(json.dumps({"1": "liver", "2": "spleen"}))
    options = json.dumps({"level": 1, "omit_empty_tiles": True}).replace('"', '""')
    (tmp_path / "m.csv").write_text(
        "id,source,kind,input,labels,options\n"
        f'tissue,slide,slide-seg,mask.npy,labels.json,"{options}"\n'
        f'wrong,slide,slide-seg,mask.npy,labels.json,"{{""level"": 0}}"\n'
        f'cut,slide,slide-seg,cut.npy,labels.json,"{options}"\n'
    )
    (tmp_path / "cut.npy").write_bytes((tmp_path / "mask.npy").read_bytes()[:100])
    out = tmp_path / "out"
    summary = run_batch(read_manifest(tmp_path / "m.csv"), out)
    assert (summary.done, summary.failed) == (1, 2), summary.results
    failures = {r.id: r.error for r in summary.results if not r.ok}
    assert "does not cover level 0" in failures["wrong"]
    assert "row cut: cannot read the slide mask" in failures["cut"]
    path = out / "tissue.dcm"
    assert dciodvfy(path).errors == []
    theirs = hd.seg.segread(path)
    assert theirs.DimensionOrganizationType == "TILED_SPARSE"
    np.testing.assert_array_equal(theirs.get_total_pixel_matrix(combine_segments=True), mask)
    first = path.read_bytes()
    again = run_batch(read_manifest(tmp_path / "m.csv"), out)
    assert again.skipped == 1 and path.read_bytes() == first
