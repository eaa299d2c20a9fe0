"""The ``ohif`` profile writes what OHIF 3.13 opens and refuses what it cannot.

What OHIF opens is measured by ``test_seg_ohif_browser.py`` and
``test_seg_cornerstone3d.py`` (both run the ``ohif`` profile); this checks the choices and
the refusal in the fast tier.
"""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from radbridge.errors import EncodingError
from radbridge.iods.seg import encode_segmentation

from .conftest import descriptions

EXPLICIT = "1.2.840.10008.1.2.1"
RLE = "1.2.840.10008.1.2.5"


@pytest.mark.parametrize(("seg_type", "syntax"), [("binary", EXPLICIT), ("labelmap", RLE)])
def test_ohif_profile_encodings(study, tmp_path, seg_type, syntax):
    ds = encode_segmentation(
        study.labels, study.source, descriptions(7), segmentation_type=seg_type, profile="ohif"
    )
    ds.save_as(tmp_path / "seg.dcm", enforce_file_format=True)
    written = pydicom.dcmread(tmp_path / "seg.dcm", stop_before_pixels=True)
    assert written.file_meta.TransferSyntaxUID == syntax


def test_ohif_profile_refuses_true_fractional(study):
    probabilities = (study.labels == 1).astype(np.float32) * 0.75
    with pytest.raises(EncodingError, match=r"profile 'ohif'.*Fractional") as caught:
        encode_segmentation(
            probabilities[np.newaxis],
            study.source,
            descriptions(1),
            segmentation_type="fractional",
            profile="ohif",
        )
    assert "BINARY or LABELMAP" in str(caught.value)


def test_pacs_profile_refuses_label_map_segs(study):
    """A PACS on DCMTK before 3.6.9 refuses the Label Map SOP class (test_seg_orthanc.py)."""
    with pytest.raises(
        EncodingError, match=r"profile 'pacs'.*1\.2\.840\.10008\.5\.1\.4\.1\.1\.66\.7"
    ):
        encode_segmentation(
            study.labels,
            study.source,
            descriptions(7),
            segmentation_type="labelmap",
            profile="pacs",
        )
    ds = encode_segmentation(study.labels, study.source, descriptions(7), profile="pacs")
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT  # BINARY: Segmentation Storage
