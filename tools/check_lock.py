"""Do the lock files still match setup.py? ``make`` runs this before installing from them.

``requirements.lock`` pins (with hashes) what ``vesagent run`` needs: the image installs it.
``requirements-test.lock`` pins that plus the ``test`` extra: ``make test``'s venv installs it.
Both are made by ``make lock`` (pip-compile). This check fails, naming each problem and the fix,
when a requirement of setup.py is not pinned (someone added a dependency), when a pin is
outside the requirement's range, or when the two locks pin a package differently: installing
anyway would silently bring unlocked versions, or miss a dependency.

Usage: python tools/check_lock.py [setup.py requirements.lock requirements-test.lock]
Standard library only (plus ``packaging``, which pip vendors), so it runs before any venv.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
except ImportError:  # a bare interpreter: pip's vendored copy
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name  # type: ignore[no-redef]

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def setup_requirements(setup_py: str) -> tuple[list[str], dict[str, list[str]]]:
    """``install_requires`` and ``extras_require`` of the ``setup(...)`` call, as literals."""
    tree = ast.parse(setup_py)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            found = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg in (
                "install_requires", "extras_require")}  # fmt: skip
            return found.get("install_requires", []), found.get("extras_require", {})
    raise ValueError("setup.py: no setup(...) call")


def pins(lock_text: str) -> dict[str, str]:
    """Package (canonical name) -> pinned version."""
    found = {}
    for line in lock_text.splitlines():
        match = PIN.match(line)
        if match:
            found[canonicalize_name(match.group(1))] = match.group(2)
    return found


def disagreements(requirements: list[str], locked: dict[str, str], lock_name: str) -> list[str]:
    """What ``lock_name`` fails to pin, or pins outside the range, of these requirements."""
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # not for this platform
        name = canonicalize_name(requirement.name)
        version = locked.get(name)
        if version is None:
            problems.append(f"{lock_name} does not pin {requirement.name} (setup.py: {text!r})")
        elif not requirement.specifier.contains(version, prereleases=True):
            problems.append(
                f"{lock_name} pins {requirement.name}=={version}, outside setup.py's {text!r}"
            )
    return problems


def check(setup_py: Path, runtime_lock: Path, test_lock: Path) -> list[str]:
    """Every disagreement between setup.py and the two locks (empty: they agree)."""
    install, extras = setup_requirements(setup_py.read_text(encoding="utf-8"))
    runtime = pins(runtime_lock.read_text(encoding="utf-8"))
    test = pins(test_lock.read_text(encoding="utf-8"))
    problems = disagreements(install, runtime, runtime_lock.name)
    problems += disagreements(install + extras.get("test", []), test, test_lock.name)
    for name, version in sorted(runtime.items()):
        if test.get(name, version) != version:
            problems.append(
                f"{runtime_lock.name} pins {name}=={version} but {test_lock.name} "
                f"pins {test[name]}: the image and the tests would differ"
            )
    return problems


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in (argv or ["setup.py", "requirements.lock", "requirements-test.lock"])]
    problems = check(*paths)
    for problem in problems:
        print(f"lock out of date: {problem}", file=sys.stderr)
    if problems:
        print("Run `make lock` and commit the lock files (README: Dependencies).", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
