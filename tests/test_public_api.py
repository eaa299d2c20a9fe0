"""The public surface: every exported name resolves; importing stays light."""

from __future__ import annotations

import subprocess
import sys

import radbridge


def test_every_exported_name_resolves():
    for name in radbridge.__all__:
        assert getattr(radbridge, name) is not None, name


def test_exports_match_the_lazy_table():
    names = [n for n in radbridge.__all__ if n != "__version__"]
    assert sorted(names) == sorted(radbridge._EXPORTS)
    assert len(set(names)) == len(names)


def test_import_and_cli_help_do_not_load_heavy_modules():
    code = (
        "import sys, radbridge.cli\n"
        "heavy = [m for m in ('scipy', 'pynetdicom', 'highdicom', 'nibabel', 'SimpleITK',\n"
        "                     'hypercorn', 'h11')\n"
        "         if m in sys.modules]\n"
        "import radbridge.gateway\n"  # the HTTP server only when STOW-RS is served
        "heavy += [m for m in ('hypercorn', 'h11') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert (
        subprocess.run(
            [sys.executable, "-m", "radbridge", "--help"], capture_output=True, check=False
        ).returncode
        == 0
    )


def _loaded(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.splitlines()[-1].split())  # the last line; help text comes before


def test_seg_import_loads_no_scipy_pandas_or_rich():
    # the whole-process SEG times (bench/bench_seg.py) depend on a cheap start-up
    loaded = _loaded("from radbridge.iods.seg import encode_segmentation, read_segmentation")
    assert "pydicom" in loaded  # the probe sees what the import pulled in
    assert not loaded & {"scipy", "pandas", "rich", "SimpleITK", "nibabel", "pynetdicom"}


def test_cli_help_renders_without_rich():
    code = (
        "from radbridge.cli import main\n"
        "assert main(['--help']) == 0\n"
        "assert main(['seg', '--help']) == 0\n"
    )
    loaded = _loaded(code)
    assert "typer" in loaded
    assert not loaded & {"rich", "scipy", "pydicom", "numpy", "pandas"}


def test_storage_send_and_receive_start_without_pydicom_or_pynetdicom():
    # `radbridge send` reads file headers and moves bytes: start-up is its whole cost on
    # small batches (bench/bench_net.py measures whole processes)
    loaded = _loaded("import radbridge.cli.net, radbridge.net.dimse.scu, radbridge.net.dimse.scp")
    assert "radbridge" in loaded
    assert not loaded & {"pydicom", "pynetdicom", "numpy", "scipy", "rich"}


def test_the_network_face_loads_its_names_on_first_use():
    # `import radbridge.net` and peer handling must not start pydicom, pynetdicom or requests
    loaded = _loaded(
        "import radbridge.net as net\n"
        "net.parse_peer('PACS@127.0.0.1:104'), net.transports(), net.quiet_pynetdicom()\n"
    )
    assert "radbridge" in loaded
    assert not loaded & {"pydicom", "pynetdicom", "requests", "dicomweb_client", "hypercorn"}
    assert "pynetdicom" in _loaded("import radbridge.net as net\nnet.find")
