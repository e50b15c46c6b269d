"""The edge installer (deploy/edge/install.sh) against a temporary root, and its unit file."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from central.certs import make_site
from edge.config import parse_edge_config
from tests import system

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "deploy" / "edge" / "install.sh"
UNIT = REPO / "deploy" / "edge" / "greenguard-edge.service"


def install(root: Path, *args: str, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INSTALL), *args], capture_output=True, text=True,
                          timeout=60, check=False, cwd=root,
                          env={**os.environ, **(env or {})})


def tree(root: Path) -> dict[str, tuple[int, str]]:
    """Every path under root with its mode and content hash: what a run changed."""
    out = {}
    for path in sorted(root.rglob("*")):
        mode = stat.S_IMODE(path.lstat().st_mode)
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        out[str(path.relative_to(root))] = (mode, digest)
    return out


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    make_site(d, broker_names=["mqtt.example.org"], edges=["edge-01"])
    return d


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    r.mkdir()
    return r


def test_a_fresh_install_places_every_file_with_its_mode(root: Path, certs: Path) -> None:
    done = install(root, "--root", str(root), "--skip-python", "--certs", str(certs),
                   "--edge", "edge-01", "--volatile-journal")
    assert done.returncode == 0, done.stderr
    assert "not creating user greenguard" in done.stdout
    assert "not starting the service" in done.stdout
    files = tree(root)
    expected = {
        "etc/greenguard": 0o750,
        "etc/greenguard/edge.yaml": 0o640,
        "etc/greenguard/edge.yaml.example": 0o644,
        "etc/greenguard/tls": 0o750,
        "etc/greenguard/tls/ca.crt": 0o644,
        "etc/greenguard/tls/edge.crt": 0o644,
        "etc/greenguard/tls/edge.key": 0o640,
        "etc/systemd/system/greenguard-edge.service": 0o644,
        "etc/systemd/journald.conf.d/greenguard.conf": 0o644,
        "var/lib/greenguard": 0o750,
    }
    for path, mode in expected.items():
        assert path in files, path
        assert files[path][0] == mode, (path, oct(files[path][0]))
    assert (root / "etc/systemd/system/greenguard-edge.service").read_bytes() == UNIT.read_bytes()
    assert (root / "etc/greenguard/tls/edge.key").read_bytes() == (
        certs / "edges" / "edge-01.key").read_bytes()
    assert "PRIVATE KEY" not in done.stdout + done.stderr


def test_a_second_run_changes_nothing(root: Path, certs: Path) -> None:
    args = ("--root", str(root), "--skip-python", "--certs", str(certs), "--edge", "edge-01")
    assert install(root, *args).returncode == 0
    before = tree(root)
    again = install(root, *args)
    assert again.returncode == 0, again.stderr
    assert tree(root) == before
    assert "install.sh: installed" not in again.stdout


def test_an_upgrade_keeps_the_config_and_refreshes_the_example_and_unit(root: Path) -> None:
    assert install(root, "--root", str(root), "--skip-python").returncode == 0
    config = root / "etc/greenguard/edge.yaml"
    config.write_text("edge_id: edited-by-the-operator\n", encoding="utf-8")
    unit = root / "etc/systemd/system/greenguard-edge.service"
    unit.write_text("[Unit]\nDescription=an older release\n", encoding="utf-8")
    done = install(root, "--root", str(root), "--skip-python")
    assert done.returncode == 0, done.stderr
    assert config.read_text(encoding="utf-8") == "edge_id: edited-by-the-operator\n"
    assert "kept /etc/greenguard/edge.yaml" in done.stdout
    assert unit.read_bytes() == UNIT.read_bytes()


def test_destdir_works_like_root(root: Path) -> None:
    done = install(root, "--skip-python", env={"DESTDIR": str(root)})
    assert done.returncode == 0, done.stderr
    assert (root / "etc/systemd/system/greenguard-edge.service").is_file()


@pytest.mark.parametrize(("args", "message"), [
    (["--certs", "/nonexistent"], "--certs and --edge go together"),
    (["--edge", "bad/id", "--certs", "."], "--edge: 'bad/id' is not an edge id"),
    (["--certs", ".", "--edge", "edge-09"], "does not exist"),
    (["--frobnicate"], "unknown option: --frobnicate"),
])
def test_bad_options_are_refused_before_anything_is_written(
        root: Path, args: list[str], message: str) -> None:
    done = install(root, "--root", str(root), "--skip-python", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert list(root.iterdir()) == []


def test_the_example_config_is_a_valid_tls_edge_config(root: Path, certs: Path) -> None:
    data = yaml.safe_load((REPO / "deploy/edge/edge.example.yaml").read_text(encoding="utf-8"))
    mqtt = data["mqtt"]
    assert (mqtt["port"], mqtt["protocol"]) == (8883, "5")
    assert mqtt["ca_file"] == "/etc/greenguard/tls/ca.crt"
    assert data["outbox"]["path"].startswith("/var/lib/greenguard/")
    # the paths exist on an installed edge; here, under the temporary root
    assert install(root, "--root", str(root), "--skip-python", "--certs", str(certs),
                   "--edge", "edge-01").returncode == 0
    for key in ("ca_file", "cert_file", "key_file"):
        mqtt[key] = str(root / mqtt[key].lstrip("/"))
    config = parse_edge_config(data)
    assert config.mqtt.cert_file == root / "etc/greenguard/tls/edge.crt"


def unit_settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_the_unit_runs_as_its_own_user_hardened_with_one_writable_path() -> None:
    s = unit_settings()
    assert s["User"] == ["greenguard"]
    assert s["Restart"] == ["on-failure"]
    assert s["RestartPreventExitStatus"] == ["2"]  # greenguard edge: configuration error
    assert s["ProtectSystem"] == ["strict"]
    assert s["ReadWritePaths"] == ["/var/lib/greenguard"]
    assert s["NoNewPrivileges"] == ["yes"]
    assert s["CapabilityBoundingSet"] == [""]
    assert s["ExecStart"] == [
        "/opt/greenguard/venv/bin/greenguard edge --config /etc/greenguard/edge.yaml"]
    script = INSTALL.read_text(encoding="utf-8")
    assert '"$R/opt/greenguard/venv"' in script  # where ExecStart looks for the program


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = system.require("systemd-analyze")
    program = tmp_path / "greenguard"
    program.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    program.chmod(0o755)
    unit = tmp_path / "greenguard-edge.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(
        "/opt/greenguard/venv/bin/greenguard", str(program)), encoding="utf-8")
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60, check=False)
    # Unknown or misspelt directives are reported on stderr; a clean unit prints nothing.
    assert done.stderr.strip() == "", done.stderr
    assert done.returncode == 0


def test_the_program_is_installed_from_a_copy_of_the_sources_pinned_by_the_lock(
        root: Path, tmp_path: Path) -> None:
    """With a stand-in python3 (no network here): the venv is made once, pip installs the
    edge extra from the copied sources with the committed lock as constraints."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    fake = bin_dir / "python3"
    fake.write_text(f"""#!/bin/sh
# python3 -m venv DIR: a venv whose pip logs its arguments
echo "python3 $*" >> {log}
mkdir -p "$3/bin"
printf '#!/bin/sh\\necho "pip $*" >> {log}\\n' > "$3/bin/pip"
printf '#!/bin/sh\\n' > "$3/bin/python"
chmod +x "$3/bin/pip" "$3/bin/python"
""", encoding="utf-8")
    fake.chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for _ in range(2):
        done = install(root, "--root", str(root), env=env)
        assert done.returncode == 0, done.stderr
    calls = log.read_text(encoding="utf-8").splitlines()
    venv = root / "opt/greenguard/venv"
    src = root / "opt/greenguard/src"
    assert calls[0] == f"python3 -m venv {venv}"
    assert calls[1:] == [f"pip install --quiet --upgrade --constraint {src}/requirements.lock "
                         f"{src}[edge]"] * 2  # the venv is made once, upgraded every run
    assert (src / "requirements.lock").read_bytes() == (REPO / "requirements.lock").read_bytes()
    assert (src / "edge" / "uplink.py").is_file()
    assert (src / "docs" / "deploy.md").is_file()  # the unit's Documentation= link
    assert not (src / ".git").exists()
    assert not (src / ".venv").exists()
