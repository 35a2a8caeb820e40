"""The wheel, as a new user installs it: one import name, no setuptools warnings, the
command, and runtime files outside site-packages."""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

import riverflink
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration


def _run(*command, **options) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, **options)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> tuple[Path, str]:
    """The wheel built from this checkout (as ``pip install .`` builds it), and the log."""
    out = tmp_path_factory.mktemp("dist")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-v",
        "--no-deps",
        "-w",
        str(out),
        str(REPO),
        env=env,
    )
    (path,) = out.glob("riverflink-*.whl")
    return path, built.stdout + built.stderr


@pytest.fixture(scope="module")
def fresh(tmp_path_factory, wheel) -> tuple[Path, set]:
    """A new virtualenv with the wheel installed, and what the install added to it.

    It sees this environment's packages (River, PyFlink) through a ``.pth`` file; a path
    listed there goes on ``sys.path`` without its own ``.pth`` files being run, so this
    checkout's editable install stays out of it.
    """
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", str(venv))
    (purelib,) = venv.glob("lib/python3*/site-packages")
    before = set(os.listdir(purelib))
    _run(str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", str(wheel[0]))
    added = set(os.listdir(purelib)) - before
    (purelib / "shared.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return venv, added


def test_building_the_wheel_gives_no_setuptools_warning(wheel):
    _, log = wheel
    warnings = [line for line in log.splitlines() if "Warning" in line or "warning:" in line]
    assert warnings == []


def test_the_install_claims_only_the_name_riverflink(fresh):
    venv, added = fresh
    assert added == {"riverflink", f"riverflink-{riverflink.__version__}.dist-info"}
    (info,) = venv.glob("lib/python3*/site-packages/riverflink-*.dist-info")
    assert (info / "top_level.txt").read_text().split() == ["riverflink"]
    assert "Apache-2.0" in (info / "METADATA").read_text()
    assert (info / "licenses" / "LICENSE").read_text() == (REPO / "LICENSE").read_text()


def test_the_command_and_the_package_work_from_the_wheel(fresh, tmp_path):
    venv, _ = fresh
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HOME"] = str(tmp_path / "home")
    env.pop("XDG_STATE_HOME", None)
    version = _run(str(venv / "bin" / "riverflink"), "--version", cwd=tmp_path, env=env)
    assert version.stdout.strip() == f"riverflink {riverflink.__version__}"
    probe = (
        "import json, importlib.util, riverflink\n"
        "from riverflink.config.flink_conf import conf_dir\n"
        "from riverflink.cluster.standalone import default_cluster_dir\n"
        'rows = list(riverflink.replay([\'{"key": "a", "x": 1.0, "y": true}\']))\n'
        "print(json.dumps({'package': riverflink.__file__, 'conf': str(conf_dir()),\n"
        "    'cluster': str(default_cluster_dir()), 'kinds': [r['kind'] for r in rows],\n"
        "    'jobs': importlib.util.find_spec('jobs') is not None}))\n"
    )
    seen = json.loads(_run(str(venv / "bin" / "python"), "-c", probe, cwd=tmp_path, env=env).stdout)
    package = Path(seen["package"]).parent
    assert package.parent.name == "site-packages" and str(venv) in str(package)
    assert (Path(seen["conf"]) / "config.yaml").is_file()
    assert Path(seen["conf"]).parent == package
    assert seen["cluster"] == str(tmp_path / "home" / ".local" / "state" / "riverflink" / "cluster")
    assert seen["kinds"] == ["prediction"]
    assert seen["jobs"] is False
