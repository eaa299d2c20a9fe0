"""Legacy Converted Enhanced CT, MR and PET images: the public face.

:func:`encode_legacy_enhanced` turns the classic single-frame images of one series
into one enhanced multi-frame image (same pixels, same geometry, every attribute
kept); :func:`read_legacy_enhanced` reads one back, with the classic image each
frame came from. :func:`radbridge.io.series.read_series` reads the converted file
like any series.

Examples
--------
>>> import tempfile
>>> from pathlib import Path
>>> from radbridge.io.phantom import write_phantom
>>> from radbridge.io.series import read_series, read_series_datasets
>>> folder = Path(tempfile.mkdtemp())
>>> study = write_phantom(folder, slices=4, size=16, nifti=False)
>>> image = encode_legacy_enhanced(read_series_datasets(study.dicom_dir))
>>> image.save_as(folder / "ct.dcm", enforce_file_format=True)
>>> (read_series(folder / "ct.dcm").volume().array
...  == read_series(study.dicom_dir).volume().array).all()
np.True_
"""

from radbridge.iods.common import SeriesOptions
from radbridge.iods.legacy.reader import LegacyEnhancedImage, read_legacy_enhanced
from radbridge.iods.legacy.types import (
    LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE,
    LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE,
    LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE,
)
from radbridge.iods.legacy.writer import encode_legacy_enhanced

__all__ = [
    "LEGACY_CONVERTED_ENHANCED_CT_IMAGE_STORAGE",
    "LEGACY_CONVERTED_ENHANCED_MR_IMAGE_STORAGE",
    "LEGACY_CONVERTED_ENHANCED_PET_IMAGE_STORAGE",
    "LegacyEnhancedImage",
    "SeriesOptions",
    "encode_legacy_enhanced",
    "read_legacy_enhanced",
]
