"""Rigid registration of two CT volumes of one patient (SimpleITK), for follow-up studies.

Two scans of the same patient on different days have different frames of reference:
the patient lies elsewhere on the table. :func:`register_rigid` finds the rotation and
shift that bring the prior scan onto the current one (mean squares on Hounsfield units,
three resolution levels, a 6-parameter Euler transform started at the centres of mass)
and returns it as a :class:`RigidTransform` that maps prior patient positions (LPS mm)
into the current frame — what :func:`radbridge.sr.compare_reports` takes as
``transform``. SimpleITK comes with ``pip install 'radbridge[register]'``.

Examples
--------
>>> import numpy as np
>>> moved = RigidTransform(np.eye(3), (2.0, 0.0, -1.0))
>>> moved((1.0, 1.0, 1.0))
(3.0, 1.0, 0.0)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from radbridge._optional import require
from radbridge.errors import GeometryError
from radbridge.geometry import Volume
from radbridge.io.nifti import volume_to_sitk

__all__ = ["RigidTransform", "register_rigid"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RigidTransform:
    """``current = rotation @ prior + translation`` (LPS mm); call it on a point."""

    rotation: NDArray[np.float64]
    translation: tuple[float, float, float]
    metric: float = 0.0

    def __call__(self, point: tuple[float, float, float]) -> tuple[float, float, float]:
        """Map a prior position into the current frame."""
        x, y, z = self.rotation @ np.asarray(point, float) + np.asarray(self.translation)
        return float(x), float(y), float(z)


def _image(volume: Volume, sitk: Any) -> Any:
    """Return the volume as a float image clipped to soft tissue to bone (-1000..1000 HU)."""
    clipped = volume.with_array(np.clip(volume.array.astype(np.float32), -1000.0, 1000.0))
    return sitk.Cast(volume_to_sitk(clipped), sitk.sitkFloat32)


#: The smallest side registration takes: the coarsest level shrinks each axis by 4.
_MIN_SIDE = 4


def register_rigid(prior: Volume, current: Volume, *, iterations: int = 200) -> RigidTransform:
    """Find the rigid motion of the patient between ``prior`` and ``current`` (both in HU).

    Parameters
    ----------
    prior, current
        The two CT volumes (e.g. ``read_series(folder).volume(rescale=True)``).
    iterations
        Optimizer iterations per resolution level.

    Returns
    -------
    RigidTransform
        Maps prior positions into the current frame.

    Raises
    ------
    OptionalDependencyError
        SimpleITK is not installed.
    GeometryError
        A volume has fewer than 4 slices, rows or columns, or the registration did
        not converge to a plausible motion.
    """
    sitk = require("SimpleITK", "register", purpose="register two CT series")
    for name, volume in (("prior", prior), ("current", current)):
        if min(volume.shape) < _MIN_SIDE:
            raise GeometryError(
                f"the {name} volume of shape {volume.shape} is too small to register",
                attribute=name,
                hint=f"register series of at least {_MIN_SIDE} slices, rows and columns "
                "(not a scout or a single image)",
            )
    fixed, moving = _image(current, sitk), _image(prior, sitk)
    start = time.perf_counter()
    initial = sitk.CenteredTransformInitializer(
        fixed, moving, sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMeanSquares()
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.1, seed=1)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=2.0, minStep=1e-4, numberOfIterations=iterations, relaxationFactor=0.6
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    method.SetInitialTransform(initial, inPlace=False)
    found = method.Execute(fixed, moving)  # maps current (fixed) points to prior (moving) ones
    euler = sitk.Euler3DTransform(sitk.CompositeTransform(found).GetNthTransform(0))
    matrix = np.array(euler.GetMatrix(), float).reshape(3, 3)
    centre = np.array(euler.GetCenter(), float)
    offset = np.array(euler.GetTranslation(), float) + centre - matrix @ centre
    rotation = matrix.T  # the inverse: prior -> current
    translation = -rotation @ offset
    log.info(
        "rigid registration: %.1f s, metric %.3g, shift %.1f mm",
        time.perf_counter() - start,
        method.GetMetricValue(),
        float(np.linalg.norm(translation)),
    )
    if not np.all(np.isfinite(translation)) or np.linalg.norm(translation) > 200.0:
        raise GeometryError(
            f"the registration found an implausible motion ({np.linalg.norm(translation):.0f} mm)",
            attribute="registration",
            hint="check that both series show the same body region of the same patient",
        )
    return RigidTransform(
        rotation,
        (float(translation[0]), float(translation[1]), float(translation[2])),
        float(method.GetMetricValue()),
    )
