"""Each I/O library is imported at exactly one seam (DESIGN.md, Style), and `--help` stays light.

import-linter checks the room contracts; this test checks the finer rule that no second module quietly
starts talking to bleak, pyserial, httpx, SQL or pyedflib directly.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "healthhut"

# library -> the modules (paths relative to healthhut/) allowed to import it; a trailing "/" allows a folder
SEAMS: dict[str, set[str]] = {
    "bleak": {"drivers/ble/transport_ble.py", "drivers/emulators/bleak_bumble.py"},  # the backend subclasses bleak
    "bleak_retry_connector": {"drivers/ble/transport_ble.py"},
    "serial": {"drivers/transport_serial.py"},
    "httpx": {"sync/fhir_client.py"},
    "jwt": {"sync/fhir_client.py"},
    "tenacity": {"sync/fhir_client.py"},
    "pyedflib": {"records/sleep/edf_import.py"},
    "matplotlib": {"records/sleep/plot.py"},
    "sqlmodel": {"records/"},
    "sqlalchemy": {"records/"},
    "alembic": {"records/"},
    "bumble": {"drivers/emulators/"},
    "paho": {"gateway/mqtt.py"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def allowed(relative: str, library: str) -> bool:
    return any(relative == seam or (seam.endswith("/") and relative.startswith(seam)) for seam in SEAMS[library])


def test_io_libraries_are_imported_only_at_their_seams() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        for library in imported_roots(path) & SEAMS.keys():
            if not allowed(relative, library):
                offenders.append(f"{relative} imports {library}")
    assert offenders == []


def test_cli_help_imports_no_heavy_module() -> None:
    code = ("import sys, healthhut.cli.main; heavy = {'fhir', 'sqlalchemy', 'sqlmodel', 'numpy', 'bleak', 'httpx', "
            "'serial', 'pyedflib', 'matplotlib', 'bumble', 'pydantic', 'alembic'}; "
            "print(sorted(m for m in heavy if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"
