"""Fixtures for the networking tests: small phantom studies and a radbridge Storage SCP."""

from __future__ import annotations

import pytest

from radbridge.io.phantom import write_phantom
from radbridge.net import StorageSCP


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """12 CT slices of 64x64: quick to send many times."""
    return write_phantom(
        tmp_path_factory.mktemp("net-small"), slices=12, size=64, seed=3, nifti=False
    )


@pytest.fixture(scope="session")
def ct_study(tmp_path_factory):
    """4 CT slices of 512x512 16-bit (about 0.5 MB each)."""
    return write_phantom(tmp_path_factory.mktemp("net-ct"), slices=4, size=512, seed=4, nifti=False)


@pytest.fixture
def scp(tmp_path):
    """A running radbridge StorageSCP on a free port, storing into tmp_path/received."""
    server = StorageSCP(tmp_path / "received", port=0).start()
    yield server
    server.stop()
