"""Gateway test helpers: put studies into a gateway's spool as the receiver would."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom import dcmread

from radbridge.gateway import Gateway, GatewayConfig
from radbridge.io.phantom import write_phantom


def receive(gateway: Gateway, files: list[Path], association: str = "a1") -> None:
    """Copy files into the spool and record them, like the C-STORE receiver."""
    gateway.association_opened(association)
    for path in files:
        ds = dcmread(path, stop_before_pixels=True)
        target = (
            gateway.config.spool_dir
            / str(ds.StudyInstanceUID)
            / str(ds.SeriesInstanceUID)
            / f"{ds.SOPInstanceUID}.dcm"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        gateway.stored(
            str(ds.StudyInstanceUID),
            str(ds.SeriesInstanceUID),
            str(ds.SOPInstanceUID),
            str(target),
            association,
        )
    gateway.association_released(association)


@pytest.fixture(scope="session")
def phantom_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("gw-phantom")
    return write_phantom(out, slices=24, size=96, seed=1)


@pytest.fixture
def config(tmp_path):
    return replace(GatewayConfig.default(tmp_path / "data"), quiet_period_s=0.0, retry_base_s=0.01)


@pytest.fixture
def gateway(config):
    gw = Gateway(config)
    yield gw
    gw.close()


from tests.batch.conftest import dask_cluster  # noqa: E402,F401  (a real Dask cluster)
