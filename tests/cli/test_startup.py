"""``radbridge GROUP ...`` builds the options of that group only, and behaves the same."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from radbridge.cli import app, app_for, deferred, main


def test_a_group_command_builds_only_its_group():
    narrowed = app_for(["seg", "encode", "--help"])
    assert [g.name for g in narrowed.registered_groups] == ["seg"]
    assert narrowed.registered_callback is app.registered_callback  # --verbose, --quiet, ...
    for args in ([], ["info", "x"], ["--verbose", "seg", "info"], ["no-such-group"]):
        assert app_for(args) is app


@pytest.mark.parametrize(
    "args",
    [
        ["seg", "--help"],
        ["seg", "encode", "--help"],
        ["seg", "no-such-command"],
        ["seg", "decode"],  # a missing argument: usage error
        ["sr", "decode", "--help"],
        ["ko", "encode", "--help"],
    ],
)
def test_output_and_exit_code_are_those_of_the_whole_app(capsys, args):
    code = main(args)
    narrowed = capsys.readouterr()
    with pytest.raises(SystemExit) as whole_exit:
        app(args=args, prog_name="radbridge")
    whole = capsys.readouterr()
    assert (code, narrowed.out, narrowed.err) == (whole_exit.value.code, whole.out, whole.err)
    assert narrowed.out or narrowed.err


#: Runs the CLI as its own process would (``main()`` reading sys.argv), then reports
#: what OpenBLAS started with, as threadpoolctl (an outside observer) sees it.
_PROBE = """
import json, sys
from radbridge.cli import main
sys.argv = ["radbridge", *sys.argv[1:]]
code = main()
import numpy, threadpoolctl
blas = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
print(json.dumps({"code": code, "threads": [p["num_threads"] for p in blas]}))
"""


def _blas_threads(args: list[str], **env: str) -> list[int]:
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        check=True,
        env={**environment, **env},
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["threads"], "NumPy's BLAS was not found"
    return list(report["threads"])


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: OpenBLAS starts one thread")
def test_a_command_without_models_starts_blas_with_one_thread(tmp_path):
    from pydicom import examples

    assert _blas_threads(["info", str(examples.get_path("ct"))]) == [1]
    # a model may use BLAS: the commands that run models keep OpenBLAS's own choice
    assert _blas_threads(["gateway", "--help"]) == [os.cpu_count()]
    # and so does a thread count the user set
    assert _blas_threads(["info", str(examples.get_path("ct"))], OMP_NUM_THREADS="2") == [2]


#: Runs a command as the CLI's own process would, then reports how the modules pydicom
#: imports for optional features were loaded, what pydicom concluded about them, and
#: whether they still work when used.
_DEFERRED_PROBE = """
import json, sys
from radbridge.cli import main
sys.argv = ["radbridge", *sys.argv[1:]]
code = main()
import importlib.util
names = ("requests", "urllib.request", "PIL.ImageCms")
lazy = {n: isinstance(sys.modules.get(n), importlib.util._LazyModule) for n in names}
from pydicom.data import download
from pydicom.pixels import processing
flags = [download.HAVE_REQUESTS, processing.HAVE_PIL]
import requests, urllib.request
from PIL import ImageCms
works = [callable(requests.Session), callable(urllib.request.urlopen),
         callable(ImageCms.profileToProfile)]
loaded = [type(sys.modules[n]).__name__ for n in names]
print(json.dumps({"code": code, "lazy": lazy, "flags": flags, "works": works, "loaded": loaded}))
"""


def _deferred_report(args: list[str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _DEFERRED_PROBE, *args], capture_output=True, text=True, check=True
    )
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_a_file_command_defers_what_pydicom_imports_for_optional_features():
    from pydicom import examples

    report = _deferred_report(["info", str(examples.get_path("ct"))])
    assert report["code"] == 0
    assert report["lazy"] == {"requests": True, "urllib.request": True, "PIL.ImageCms": True}
    assert report["flags"] == [True, True]  # pydicom still finds them installed
    assert report["works"] == [True, True, True]  # and they load on first use
    assert report["loaded"] == ["module", "module", "module"]


def test_network_and_model_commands_import_as_usual():
    from pydicom import examples

    report = _deferred_report(["send", "--help"])
    assert report["lazy"] == {"requests": False, "urllib.request": False, "PIL.ImageCms": False}
    assert deferred.defers(["info", str(examples.get_path("ct"))])
    for command in ("gateway", "batch", "demo", "listen", "send", "echo", "query", "retrieve"):
        assert not deferred.defers([command, "--help"])


def test_in_process_calls_import_as_usual():
    assert "pydicom" in sys.modules  # the test process: main([...]) is not the CLI's own
    assert not deferred.defer_optional_imports(["info", "x.dcm"])
    assert not any(isinstance(f, deferred._Deferring) for f in sys.meta_path)


def test_a_missing_module_still_fails_to_import():
    finder = deferred._Deferring()
    assert finder.find_spec("requests", None) is not None
    assert isinstance(finder.find_spec("requests", None).loader, importlib.util.LazyLoader)
    assert finder.find_spec("not_a_module_radbridge_knows", None) is None  # not deferred
    sys.meta_path.insert(0, finder)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(deferred, "DEFERRED", frozenset({"radbridge_absent_module"}))
            with pytest.raises(ModuleNotFoundError):
                importlib.import_module("radbridge_absent_module")
    finally:
        sys.meta_path.remove(finder)
