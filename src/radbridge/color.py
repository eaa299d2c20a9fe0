"""Display colours: sRGB (0-255) to and from DICOM's scaled CIELab.

DICOM stores recommended display colours as CIELab (D65 white point), each
component scaled to 16 bits: L* 0..100 → 0..65535 and a*, b* -128..127 →
0..65535 (PS3.3 C.10.7.1.1). The conversion goes sRGB → linear RGB → CIE XYZ
(D65) → CIELab.

Examples
--------
>>> rgb_to_dicom_lab((255, 255, 255))
(65535, 32896, 32896)
>>> dicom_lab_to_rgb(rgb_to_dicom_lab((221, 130, 101)))
(221, 130, 101)
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import numpy as np

__all__ = [
    "dicom_lab_to_rgb",
    "lab_to_rgb",
    "rgb_to_dicom_lab",
    "rgb_to_lab",
    "srgb_icc_profile",
]

_WHITE = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_XYZ_TO_RGB = np.linalg.inv(_RGB_TO_XYZ)
_EPSILON = 216 / 24389
_KAPPA = 24389 / 27


def rgb_to_lab(rgb: tuple[int, int, int]) -> tuple[float, float, float]:
    """Convert sRGB (0-255) to CIELab (L* 0..100, a*, b* about -128..127)."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = _RGB_TO_XYZ @ linear / _WHITE
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), (_KAPPA * xyz + 16) / 116)
    return (float(116 * f[1] - 16), float(500 * (f[0] - f[1])), float(200 * (f[1] - f[2])))


def lab_to_rgb(lab: tuple[float, float, float]) -> tuple[int, int, int]:
    """Convert CIELab to sRGB (0-255), clipping colours outside the sRGB gamut."""
    lightness, a, b = lab
    fy = (lightness + 16) / 116
    f = np.array([fy + a / 500, fy, fy - b / 200])
    xyz = np.where(f**3 > _EPSILON, f**3, (116 * f - 16) / _KAPPA)
    if lightness <= _KAPPA * _EPSILON:
        xyz[1] = lightness / _KAPPA
    linear = np.clip(_XYZ_TO_RGB @ (xyz * _WHITE), 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    r, g, b_ = (round(float(v) * 255) for v in np.clip(srgb, 0.0, 1.0))
    return (r, g, b_)


def rgb_to_dicom_lab(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Convert sRGB (0-255) to the scaled 16-bit CIELab DICOM stores."""
    lightness, a, b = rgb_to_lab(rgb)
    return (
        round(lightness * 65535 / 100),
        round((a + 128) * 65535 / 255),
        round((b + 128) * 65535 / 255),
    )


def dicom_lab_to_rgb(value: tuple[int, ...]) -> tuple[int, int, int]:
    """Convert DICOM's scaled CIELab (three values 0..65535) to sRGB (0-255)."""
    lightness = value[0] * 100 / 65535
    a = value[1] * 255 / 65535 - 128
    b = value[2] * 255 / 65535 - 128
    return lab_to_rgb((lightness, a, b))


@cache
def srgb_icc_profile() -> bytes:
    """Return an sRGB ICC profile for the ICC Profile attribute of colour images."""
    return resources.files("radbridge.data").joinpath("srgb.icc").read_bytes()
