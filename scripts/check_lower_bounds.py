#!/usr/bin/env python
"""Version drift, the other end: does the suite pass on the lower bounds ``pyproject.toml`` promises? (a CI step)

    python scripts/check_lower_bounds.py [--venv build/venv-lowest] [--resolve-only]

``pyproject.toml`` says its lower bounds are tested versions. The main run installs the newest versions the
registry serves, so without this step a bound can fall behind what the code needs unnoticed.

1. Reads every ``name>=version`` of the runtime dependencies and of the extras the ``dev`` extra pulls in
   (viz, dicomseg, tracking, registration); test tools (pytest, ruff, jsonschema) are left out.
2. Asks pip to resolve all of them pinned at their bounds together (``pip install --dry-run``, nothing is
   installed): bounds that cannot be installed side by side (say, an extra needing a newer release of a
   core dependency than the core bound) are an error, with pip's explanation.
3. Builds a second virtual environment that sees this environment's packages (through a
   ``site.addsitedir`` line, as ``check_newest_deps.py`` does) with each dependency whose installed version
   is above its bound installed at the bound on top, and runs the parts of the suite those dependencies
   serve: I/O and DICOM, transforms, metrics, networks, the zoo checks, the CAD chain's writers.

Exit status: 0 when the bounds resolve and the subset passes, 1 otherwise. Prints the timing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from dependency_envs import REPO_ROOT, lower_bounds, overlay_venv, version_key

# torch is installed by the Makefile from its own pin before anything else (its registry build is CUDA)
NOT_OVERLAID = ("torch",)
SUBSET = [
    "tests/data",
    "tests/transforms",
    "tests/metrics",
    "tests/networks",
    "tests/bundles/test_zoo_checks.py",
    "tests/apps/zoo/test_weights.py",
    "tests/apps/cad",
]


def resolve(pins: dict[str, str]) -> str | None:
    """None when pip can install ``pins`` together (dependencies included); else pip's error lines."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run",
         *(f"{name}=={version}" for name, version in pins.items())],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode == 0:
        return None
    # pip's verdict (stderr) and its explanation (stdout: "highdicom 0.28.0 depends on pydicom>=3.0.1")
    lines = (result.stderr + "\n" + result.stdout).splitlines()
    return "\n".join(
        line for line in lines if line.startswith("ERROR") or "depends on" in line or "requested" in line
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--venv", default=str(REPO_ROOT / "build" / "venv-lowest"), help="the second environment"
    )
    parser.add_argument(
        "--resolve-only", action="store_true", help="stop after step 2 (no environment, no tests)"
    )
    args = parser.parse_args(argv)

    start = time.monotonic()
    bounds = lower_bounds()
    installed = {name: metadata.version(name) for name in bounds}
    below = [n for n in bounds if version_key(installed[n]) < version_key(bounds[n])]
    if below:
        print(f"error: installed below the lower bound: {', '.join(below)}", file=sys.stderr)
        return 1
    conflict = resolve(bounds)
    if conflict:
        print(
            f"error: the lower bounds of pyproject.toml cannot be installed together:\n{conflict}",
            file=sys.stderr,
        )
        return 1
    print(f"the {len(bounds)} lower bounds resolve together ({time.monotonic() - start:.0f} s)")
    overlay = {
        n: v
        for n, v in bounds.items()
        if n not in NOT_OVERLAID and version_key(installed[n]) > version_key(v)
    }
    for name in sorted(bounds):
        print(
            f"  {name}: >= {bounds[name]}, installed {installed[name]}{'  -> tested at the bound' if name in overlay else ''}"
        )
    if args.resolve_only or not overlay:
        return 0
    python = overlay_venv(Path(args.venv), overlay)
    seen = json.loads(
        subprocess.run(
            [str(python), "-c", f"import json; from importlib import metadata; print(json.dumps({{n: metadata.version(n) for n in {sorted(overlay)!r}}}))"],
            check=True, capture_output=True, text=True, cwd=REPO_ROOT,
        ).stdout
    )  # fmt: skip
    wrong = [f"{n} {seen[n]}" for n in overlay if version_key(seen[n]) != version_key(overlay[n])]
    if wrong:
        print(f"error: the second environment does not see the bounds: {', '.join(wrong)}", file=sys.stderr)
        return 1
    result = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow", *SUBSET],
        cwd=REPO_ROOT,
    )
    print(f"lower-bound subset ({len(overlay)} packages at their bound): exit {result.returncode} "
          f"in {time.monotonic() - start:.0f} s (wall)")  # fmt: skip
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
