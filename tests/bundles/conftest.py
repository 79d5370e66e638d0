"""What the bundle tests share: the test module's tiny dataset, and running a bundle the way a user does.

A test module declares its bundle and data; the fixtures here read them from the module:

- ``CONFIGS``: the bundle's ``configs`` folder (for :func:`bundle_cli`);
- ``BUNDLE_TIMEOUT``: seconds a command may run (optional, 240 by default);
- ``TINY_DATASET = (ensure_function, folder, subfolder)`` and ``TINY_DATA`` (for :func:`tiny_dataset`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BundleCLI:
    """Commands in a subprocess at the repository root, as a user runs them; ``monai.bundle run`` of one bundle.

    Attributes:
        configs: the bundle's ``configs`` folder.
        timeout: seconds a command may run.
    """

    configs: Path
    timeout: int = 240

    def run(
        self, args: Sequence[str], cwd: Path = REPO, timeout: int | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``args``; output captured as text."""
        # one OpenMP thread: the tiny workflows run beside each other on small CI machines, where more
        # threads only add hand-offs; warnings off, so that the logs the tests search stay short
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        return subprocess.run(
            list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout or self.timeout
        )

    def config_arg(self, configs: Sequence[str]) -> str:
        """The ``--config_file`` value of ``configs`` (file names in :attr:`configs`): one path, or a list."""
        files = [str(self.configs / c) for c in configs]
        return files[0] if len(files) == 1 else "[" + ",".join(f"'{f}'" for f in files) + "]"

    def __call__(
        self, run_id: str | None, configs: Sequence[str], *overrides: str
    ) -> subprocess.CompletedProcess:
        """``python -m monai.bundle run [run_id] --config_file <configs> <overrides>``."""
        head = [sys.executable, "-m", "monai.bundle", "run"] + ([run_id] if run_id else [])
        return self.run(head + ["--config_file", self.config_arg(configs), *overrides])


@pytest.fixture(scope="module")
def bundle_cli(request: pytest.FixtureRequest) -> BundleCLI:
    """The :class:`BundleCLI` of the test module's bundle (its ``CONFIGS``, ``BUNDLE_TIMEOUT``)."""
    return BundleCLI(request.module.CONFIGS, getattr(request.module, "BUNDLE_TIMEOUT", 240))


@pytest.fixture(scope="module")
def tiny_dataset(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test module's tiny embedded dataset, made once per module.

    ``ensure_function, folder, subfolder = TINY_DATASET`` is called as
    ``ensure_function(<a new temporary folder named folder>/<subfolder>, **TINY_DATA)``.
    """
    ensure, folder, subfolder = request.module.TINY_DATASET
    return Path(ensure(tmp_path_factory.mktemp(folder) / subfolder, **request.module.TINY_DATA))
