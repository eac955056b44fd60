"""The shipped systemd unit runs the real command, keeps secrets out of the environment, and is hardened."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[3] / "systemd" / "healthhut-sync.service"


def load_unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_exec_start_is_a_real_healthhut_command() -> None:
    service = load_unit()["Service"]
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "healthhut"
    # the arguments must name an existing command: `--help` of it succeeds (in a subprocess: the CLI sets up
    # process-wide logging, which must not leak into other tests)
    result = subprocess.run([sys.executable, "-m", "healthhut", *argv[1:], "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Run the sync service" in result.stdout


def test_secrets_come_as_credentials_and_files_stay_private() -> None:
    service = load_unit()["Service"]
    assert service["LoadCredential"].startswith("platform-token:")
    assert "Environment" not in service or "TOKEN" not in service["Environment"].upper()
    assert service["UMask"] == "0077"
    assert service["StateDirectoryMode"] == "0700"
    for hardening in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[hardening] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["Restart"] == "always"


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` reads it without a warning (unknown keys, bad values are warnings there)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is missing on the CI machine")
        pytest.skip("systemd-analyze is not installed on this developer machine")
    healthhut = Path(sys.executable).with_name("healthhut")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/healthhut/.venv/bin/healthhut", str(healthhut)),
                    encoding="utf-8")
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
