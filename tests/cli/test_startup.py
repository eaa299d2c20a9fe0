"""``radbridge GROUP ...`` builds the options of that group only, and behaves the same."""

from __future__ import annotations

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
