"""The one error type raised for bad input, so a caller (CLI, bundle, batch loop) can catch it,
log the file and the problem, and move on to the next scan.
"""

from __future__ import annotations

import os

__all__ = ["InputError"]


class InputError(ValueError):
    """Bad input: names the offending file or folder and says what is wrong with it.

    Args:
        path: the file or folder the problem was found in.
        problem: what is wrong, in words a user can act on.

    Examples:
        >>> err = InputError("/data/scan.nii.gz", "contains NaN values")
        >>> str(err)
        '/data/scan.nii.gz: contains NaN values'
    """

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
