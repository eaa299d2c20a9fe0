"""``radbridge GROUP ...`` builds the options of that group only, and behaves the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from radbridge.cli import app, app_for, main


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
