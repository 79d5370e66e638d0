"""Lazy package exports: a package names its public objects and they are imported on first use.

Every ``__init__.py`` of lungcad uses this, so that ``import lungcad_transforms`` (and ``lungcad --help``)
loads neither itk, pydicom, monai nor torch until a name that needs them is touched, as PEP 562 allows.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Mapping[str, str], subpackages: Sequence[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package with lazily imported names.

    Args:
        package: the package's ``__name__``.
        names: public name -> the dotted module that defines it.
        subpackages: subpackages (or modules) of ``package`` reachable as attributes before being imported.

    Examples:
        >>> getattr_, dir_ = lazy_exports("lungcad_transforms", {"InputError": "lungcad_transforms.errors"})
        >>> getattr_("InputError").__name__
        'InputError'
        >>> "InputError" in dir_()
        True
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            return getattr(importlib.import_module(names[name]), name)
        if name in subpackages:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names) | set(subpackages))

    return __getattr__, __dir__
