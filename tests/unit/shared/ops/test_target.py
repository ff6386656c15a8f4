"""Where a command acts: a running `make run` stack if there is one, else what the settings name."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.settings import Settings
from shared.ops import cli
from shared.ops.target import OpsError, resolve
from tests.unit.shared.ops.support import write_state


def test_auto_mode_finds_a_running_make_run_stack_else_uses_the_settings(tmp_path: Path) -> None:
    state = tmp_path / "stack.json"
    parser = cli.build_parser()
    target = resolve(parser.parse_args(["--stack", str(state), "status"]), Settings())
    assert target.mode == "aws" and target.settings.endpoint_url is None
    write_state(state, 1)
    target = resolve(parser.parse_args(["--stack", str(state), "status"]), Settings())
    assert target.mode == "local"
    assert target.settings.endpoint_url == "http://127.0.0.1:5999"
    assert target.api_url == "http://127.0.0.1:8123"
    aws = resolve(parser.parse_args(["--aws", "--stack", str(state), "status"]), Settings())
    assert aws.mode == "aws"
    write_state(state, 1, pid=2**22 + 12345)  # a pid that does not run: the stack is gone
    with pytest.raises(OpsError):
        resolve(parser.parse_args(["--local", "--stack", str(state), "status"]), Settings())
