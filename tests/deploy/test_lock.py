"""The dependency locks: the image and ``make test`` install the same hash-checked versions, and
``tools/check_lock.py`` stops the build, naming the fix, when setup.py and the locks disagree."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

from tools.check_lock import check, pins

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements.lock"
TEST_LOCK = ROOT / "requirements-test.lock"
RUNTIME_ONLY = ("vesagent/sim", "vesagent/bench", "vesagent/demo.py")


def test_locks_agree_with_setup_py() -> None:
    """The committed locks pin every requirement of setup.py within its range, alike."""
    assert check(ROOT / "setup.py", LOCK, TEST_LOCK) == []


def test_every_pin_carries_hashes() -> None:
    """Each pinned package has at least one sha256 (pip --require-hashes needs them all)."""
    for lock in (LOCK, TEST_LOCK):
        entries = re.split(r"\n(?=[A-Za-z0-9])", lock.read_text("utf-8").split("\n\n")[-1])
        for entry in entries:
            if "==" in entry:
                assert "--hash=sha256:" in entry, f"{lock.name}: {entry.splitlines()[0]}"
    assert set(pins(LOCK.read_text("utf-8"))) < set(pins(TEST_LOCK.read_text("utf-8")))


def _project(tmp_path: Path, requires: str, runtime: str, test: str) -> list[Path]:
    setup = tmp_path / "setup.py"
    setup.write_text(
        "from setuptools import setup\n"
        f"setup(name='x', install_requires=[{requires}],\n"
        "      extras_require={'test': ['pytest>=8']})\n",
        "utf-8",
    )
    (tmp_path / "r.lock").write_text(runtime, "utf-8")
    (tmp_path / "t.lock").write_text(test, "utf-8")
    return [setup, tmp_path / "r.lock", tmp_path / "t.lock"]


def test_check_names_a_new_dependency_a_pin_out_of_range_and_a_split(tmp_path: Path) -> None:
    """A requirement added to setup.py, a pin its range excludes, and two locks pinning one
    package differently are each reported."""
    paths = _project(
        tmp_path,
        "'flask>=3', 'psycopg[binary]>=3.2', \"pywin32; sys_platform == 'win32'\"",
        "flask==2.3.0 \\\n    --hash=sha256:aa\n",
        "flask==3.1.0 \\\n    --hash=sha256:bb\npytest==8.3.0 \\\n    --hash=sha256:cc\n",
    )
    problems = check(*paths)
    assert "r.lock pins flask==2.3.0, outside setup.py's 'flask>=3'" in problems
    assert "r.lock does not pin psycopg (setup.py: 'psycopg[binary]>=3.2')" in problems
    assert "t.lock does not pin psycopg (setup.py: 'psycopg[binary]>=3.2')" in problems
    assert any("r.lock pins flask==2.3.0 but t.lock pins 3.1.0" in p for p in problems)
    assert not any("pywin32" in p for p in problems)  # not for this platform
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_lock.py"), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1 and "Run `make lock`" in done.stderr


def test_makefile_and_dockerfile_install_from_the_locks() -> None:
    """The venv installs the test lock, the image the runtime lock, both hash-checked and
    without resolving anything else; the venv is rebuilt when a lock changes."""
    makefile = (ROOT / "Makefile").read_text("utf-8")
    stamp = re.search(r"^\$\(STAMP\):(.*)\n((?:\t.*\n)+)", makefile, re.M)
    assert stamp, "no $(STAMP) rule"
    assert "$(LOCK)" in stamp.group(1) and "$(TEST_LOCK)" in stamp.group(1)
    recipe = stamp.group(2)
    assert recipe.index("tools/check_lock.py") < recipe.index("--require-hashes")
    assert "--require-hashes --no-deps -r $(TEST_LOCK)" in recipe
    assert "--no-deps -e ." in recipe and "'.[test]'" not in recipe
    dockerfile = (ROOT / "Dockerfile").read_text("utf-8")
    assert re.search(r"^COPY requirements\.lock ", dockerfile, re.M)
    assert (
        "pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock" in dockerfile
    )
    assert "pip check" in dockerfile


def test_simulators_and_benchmarks_stay_out_of_the_image() -> None:
    """.dockerignore drops them, and no module the image keeps imports them at load time."""
    ignored = (ROOT / ".dockerignore").read_text("utf-8").splitlines()
    assert set(RUNTIME_ONLY) <= set(ignored)
    for path in sorted((ROOT / "vesagent").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(RUNTIME_ONLY):
            continue
        tree = ast.parse(path.read_text("utf-8"))
        for node in tree.body:  # module level only: lazy imports in functions are fine
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                assert not name.startswith(("vesagent.sim", "vesagent.bench", "vesagent.demo")), (
                    f"{relative} imports {name}, which the image leaves out"
                )
