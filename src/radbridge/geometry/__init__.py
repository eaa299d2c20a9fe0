"""Patient-space geometry: :class:`Volume`, series → volume, plane ordering."""

from radbridge.geometry.align import align_to_grid, crop_of_grid, embed_in_grid
from radbridge.geometry.series import SeriesPlan, plan_series, volume_from_datasets
from radbridge.geometry.stack import PlaneInfo, StackPlan, plan_stack
from radbridge.geometry.volume import SliceRef, Volume, VolumeGeometry, affine_from_planes

__all__ = [
    "PlaneInfo",
    "SeriesPlan",
    "SliceRef",
    "StackPlan",
    "Volume",
    "VolumeGeometry",
    "affine_from_planes",
    "align_to_grid",
    "crop_of_grid",
    "embed_in_grid",
    "plan_series",
    "plan_stack",
    "volume_from_datasets",
]
