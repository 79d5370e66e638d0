#!/usr/bin/env python
"""Version drift: does the suite pass on the newest MONAI and ignite the registry serves? (a CI step)

    python scripts/check_newest_deps.py [--force] [--venv build/venv-newest]

1. Asks the registry (``pip install --dry-run --report``, the ordinary client) for the newest ``monai`` and
   ``pytorch-ignite``, and compares them with the installed ones and with ``pyproject.toml``'s lower bounds
   (which are the tested versions: a bound above the installed version is an error).
2. When a newer one exists (or with ``--force``), builds a second virtual environment that sees this
   environment's packages (torch and the rest, through a ``site.addsitedir`` line) with the newest MONAI
   and ignite installed on top, and runs a representative subset of the suite in it: the zoo checks of
   every bundle, the MONAI Deploy contract, the weight, zip and checkpoint tests, the networks.
   When the installed versions are the newest, the main run has already tested them and nothing more runs.

Exit status: 0 when the subset passes or nothing newer exists, 1 otherwise. Prints the timing.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("monai", "pytorch-ignite")
SUBSET = [
    "tests/bundles/test_zoo_checks.py",
    "tests/apps/zoo/test_deploy_contract.py",
    "tests/apps/zoo/test_weights.py",
    "tests/apps/zoo/test_archive.py",
    "tests/apps/zoo/test_training_checkpoints.py",
    "tests/networks",
]


def version_key(version: str) -> tuple[int, ...]:
    """``version`` as four numbers to compare ("0.9" is "0.9.0"; a local label like "+cpu" is ignored)."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0])[:4]]
    return tuple(parts + [0] * (4 - len(parts)))


def newest_versions(python: str = sys.executable) -> dict[str, str]:
    """Newest version of each of ``PACKAGES`` the configured registry serves (no download of packages)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [python, "-m", "pip", "install", "--dry-run", "--quiet", "--no-deps", "--ignore-installed",
             "--report", str(report), *PACKAGES],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        items = json.loads(report.read_text())["install"]
    return {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in items}


def lower_bounds() -> dict[str, str]:
    """``pyproject.toml``'s lower bound of each of ``PACKAGES``."""
    text = (REPO_ROOT / "pyproject.toml").read_text()  # tomllib is Python 3.11+: one regex suffices here
    found = re.findall(r'^\s*"([A-Za-z0-9_.-]+)>=([0-9.]+)"', text, flags=re.M)
    return {name.lower(): version for name, version in found if name.lower() in PACKAGES}


def overlay_venv(venv: Path, pins: dict[str, str]) -> Path:
    """A virtual environment at ``venv`` with ``pins`` (name: version) over this environment's packages."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    purelib = Path(
        subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                       check=True, capture_output=True, text=True).stdout.strip()
    )  # fmt: skip
    # this environment's packages (torch, lungcad's editable install...) come after the newest ones
    (purelib / "zz_base_environment.pth").write_text(
        f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
    )
    wanted = [f"{name}=={version}" for name, version in pins.items()]
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", *wanted], check=True)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="run the subset even when nothing newer exists")
    parser.add_argument(
        "--venv", default=str(REPO_ROOT / "build" / "venv-newest"), help="the second environment"
    )
    args = parser.parse_args(argv)

    installed = {name: metadata.version(name) for name in PACKAGES}
    bounds = lower_bounds()
    newest = newest_versions()
    for name in PACKAGES:
        print(
            f"{name}: pyproject >= {bounds.get(name)}, installed {installed[name]}, newest served {newest[name]}"
        )
        if name in bounds and version_key(bounds[name]) > version_key(installed[name]):
            print(
                f"error: the lower bound of {name} is above the tested (installed) version", file=sys.stderr
            )
            return 1
    newer = {n: v for n, v in newest.items() if version_key(v) > version_key(installed[n])}
    if not newer and not args.force:
        print(
            "the installed MONAI and ignite are the newest the registry serves: the main test run covers them"
        )
        return 0
    start = time.monotonic()
    python = overlay_venv(Path(args.venv), newest)
    versions = subprocess.run(
        [str(python), "-c", "import monai, ignite; print('monai', monai.__version__, 'ignite', ignite.__version__)"],
        check=True, capture_output=True, text=True, cwd=REPO_ROOT,
    ).stdout.strip()  # fmt: skip
    print(f"second environment {args.venv}: {versions}")
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *SUBSET],
        cwd=REPO_ROOT,
    )
    print(f"newest-dependency subset: exit {result.returncode} in {time.monotonic() - start:.0f} s (wall)")
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
