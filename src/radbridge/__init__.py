"""radbridge: machine-learning results as first-class DICOM.

The public surface is assembled here; see the README for a tour.
"""

from radbridge.coding import Code
from radbridge.errors import RadbridgeError
from radbridge.geometry import SliceRef, Volume, VolumeGeometry, volume_from_datasets

__version__ = "0.1.0"

__all__ = [
    "Code",
    "RadbridgeError",
    "SliceRef",
    "Volume",
    "VolumeGeometry",
    "__version__",
    "volume_from_datasets",
]
