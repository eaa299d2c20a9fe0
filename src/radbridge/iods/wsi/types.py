"""The slide-microscopy family's types: SOP classes, optical paths, tile organisation.

Examples
--------
>>> TileOrganization("tiled-sparse") is TileOrganization.TILED_SPARSE
True
>>> OpticalPath("1", "Brightfield").identifier
'1'
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset

from radbridge.coding import Code
from radbridge.iods.common import CaseInsensitiveEnum

__all__ = [
    "VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE",
    "OpticalPath",
    "TileOrganization",
]

#: VL Whole Slide Microscopy Image Storage.
VL_WHOLE_SLIDE_MICROSCOPY_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.6"


class TileOrganization(CaseInsensitiveEnum):
    """Dimension Organization Type (0020,9311) of a tiled image."""

    TILED_FULL = "TILED_FULL"
    TILED_SPARSE = "TILED_SPARSE"


@dataclass(frozen=True)
class OpticalPath:
    """One item of the Optical Path Sequence (PS3.3 C.8.12.5): how a channel was imaged.

    Attributes
    ----------
    identifier
        Optical Path Identifier, which frames refer to.
    description
        Optical Path Description ("" when absent).
    illumination_type
        First item of Illumination Type Code Sequence (e.g. brightfield), if any.
    illumination_color
        Illumination Color Code Sequence's code, if any.
    illumination_wavelength
        Illumination Wave Length (nm), if any.
    """

    identifier: str
    description: str = ""
    illumination_type: Code | None = None
    illumination_color: Code | None = None
    illumination_wavelength: float | None = None

    @classmethod
    def from_dataset(cls, item: Dataset) -> OpticalPath:
        """Read one Optical Path Sequence item (tolerant: absent codes are ``None``)."""

        def code(keyword: str) -> Code | None:
            seq = item.get(keyword)
            try:
                return Code.from_dataset(seq[0]) if seq else None
            except (ValueError, TypeError, AttributeError):
                return None

        wavelength = item.get("IlluminationWaveLength")
        try:
            nm = float(wavelength) if wavelength not in (None, "") else None
        except (TypeError, ValueError):
            nm = None
        return cls(
            str(item.get("OpticalPathIdentifier", "") or ""),
            str(item.get("OpticalPathDescription", "") or ""),
            code("IlluminationTypeCodeSequence"),
            code("IlluminationColorCodeSequence"),
            nm,
        )

    def to_json(self) -> dict[str, object]:
        """Return a JSON-ready description (``radbridge wsi info --json``)."""
        out: dict[str, object] = {"identifier": self.identifier}
        if self.description:
            out["description"] = self.description
        if self.illumination_type is not None:
            out["illumination_type"] = self.illumination_type.to_json()
        if self.illumination_color is not None:
            out["illumination_color"] = self.illumination_color.to_json()
        if self.illumination_wavelength is not None:
            out["illumination_wavelength_nm"] = self.illumination_wavelength
        return out
