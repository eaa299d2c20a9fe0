"""Real third-party peers for radbridge tests: Orthanc, DCMTK, dicom3tools, PixelMed, dcmqi.

Use the fixtures from ``tests/conftest.py`` (``orthanc``, ``orthanc_factory``, ``storescp``,
``free_port``, ``interop``) and these wrappers::

    from tests.peers import dciodvfy, dsrdump, storescu, validate_sr

    result = dciodvfy(path)
    assert result.ok, result.summary()

Every wrapper raises :class:`PeerMissingError` when its program is not installed, so a
peer test FAILS (never skips): CI installs all peers via ``scripts/install-system.sh``
and the ``[test]`` extra. Mark such tests ``@pytest.mark.peer`` (and ``slow`` when they
take more than a few seconds, e.g. PixelMed).
"""

from ._common import (
    REPO_ROOT,
    Completed,
    PeerCommandError,
    PeerMissingError,
    ValidationResult,
    free_port,
    interop_dir,
    log_tail,
    run,
    stop_process,
    venv_program,
    wait_for_port,
)
from .dcmjs import (
    Cornerstone3DLabelmaps,
    DcmjsLabelmaps,
    cornerstone3d_segmentation,
    dcmjs_segmentation,
    dcmjs_sr_measurements,
    ohif_browser_segmentation,
)
from .dcmqi import SegImages, paramap2itkimage, segimage2itkimage, tid1500reader
from .dcmtk import (
    StoreSCP,
    dcmdrle,
    dcmdump,
    dcmp2pgm_dump,
    dcmpschk,
    dcmtk_program,
    dsrdump,
    echoscu,
    running_storescp,
    start_storescp,
    storescu,
)
from .dicom3tools import dcentvfy, dciodvfy
from .orthanc import (
    Orthanc,
    OrthancConfig,
    OrthancHTTPError,
    running_orthanc,
    start_orthanc,
)
from .pixelmed import validate_instances, validate_sr

__all__ = [
    "REPO_ROOT",
    "Completed",
    "Cornerstone3DLabelmaps",
    "DcmjsLabelmaps",
    "Orthanc",
    "OrthancConfig",
    "OrthancHTTPError",
    "PeerCommandError",
    "PeerMissingError",
    "SegImages",
    "StoreSCP",
    "ValidationResult",
    "cornerstone3d_segmentation",
    "dcentvfy",
    "dciodvfy",
    "dcmdrle",
    "dcmdump",
    "dcmjs_segmentation",
    "dcmjs_sr_measurements",
    "dcmp2pgm_dump",
    "dcmpschk",
    "dcmtk_program",
    "dsrdump",
    "echoscu",
    "free_port",
    "interop_dir",
    "log_tail",
    "ohif_browser_segmentation",
    "paramap2itkimage",
    "run",
    "running_orthanc",
    "running_storescp",
    "segimage2itkimage",
    "start_orthanc",
    "start_storescp",
    "stop_process",
    "storescu",
    "tid1500reader",
    "validate_instances",
    "validate_sr",
    "venv_program",
    "wait_for_port",
]
