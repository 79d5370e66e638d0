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
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from dependency_envs import REPO_ROOT, lower_bounds, overlay_venv, version_key

PACKAGES = ("monai", "pytorch-ignite")
SUBSET = [
    "tests/bundles/test_zoo_checks.py",
    "tests/apps/zoo/test_deploy_contract.py",
    "tests/apps/zoo/test_weights.py",
    "tests/apps/zoo/test_archive.py",
    "tests/apps/zoo/test_training_checkpoints.py",
    "tests/networks",
]


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="run the subset even when nothing newer exists")
    parser.add_argument(
        "--venv", default=str(REPO_ROOT / "build" / "venv-newest"), help="the second environment"
    )
    args = parser.parse_args(argv)

    installed = {name: metadata.version(name) for name in PACKAGES}
    bounds = lower_bounds()  # every bound; only PACKAGES' are compared here
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
