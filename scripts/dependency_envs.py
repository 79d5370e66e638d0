"""What the two dependency checks share: version comparison, ``pyproject.toml``'s lower bounds and an
overlay environment. Imported by ``check_newest_deps.py`` and ``check_lower_bounds.py``; not a command."""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# the optional dependency groups the checks cover (dev tooling aside)
EXTRAS = ("viz", "dicomseg", "tracking", "registration")


def version_key(version: str) -> tuple[int, ...]:
    """``version`` as four numbers to compare ("0.9" is "0.9.0"; a local label like "+cpu" is ignored)."""
    parts = [int(p) for p in re.findall(r"\d+", version.split("+")[0])[:4]]
    return tuple(parts + [0] * (4 - len(parts)))


def _requirements(block: str) -> dict[str, str]:
    return {name.lower(): version for name, version in re.findall(r'"([A-Za-z0-9_.-]+)>=([0-9.]+)"', block)}


def lower_bounds(pyproject: Path = REPO_ROOT / "pyproject.toml") -> dict[str, str]:
    """The lower bound (``>=``) of each runtime dependency and of each dependency of :data:`EXTRAS`."""
    text = pyproject.read_text()  # tomllib is Python 3.11+ and the project supports 3.10: regexes suffice
    core = re.search(r"^dependencies = \[(.*?)^\]", text, flags=re.M | re.S)
    if core is None:
        raise SystemExit(f"{pyproject}: no [project] dependencies list")
    bounds = _requirements(core.group(1))
    for extra in EXTRAS:
        line = re.search(rf"^{extra} = \[(.*?)\]", text, flags=re.M)
        if line is None:
            raise SystemExit(f"{pyproject}: no optional dependency group {extra!r}")
        bounds.update(_requirements(line.group(1)))
    return bounds


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
