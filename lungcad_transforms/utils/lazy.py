"""Lazy package exports: a package names its public objects and they are imported on first use.

Every ``__init__.py`` of lungcad uses this, so that ``import lungcad_transforms`` (and ``lungcad --help``)
loads neither itk, pydicom, monai nor torch until a name that needs them is touched, as PEP 562 allows.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["lazy_exports", "reexported"]


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


def reexported(
    package: str, subpackages: Sequence[str], names: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The public names of ``subpackages`` (each package's own ``__all__``), served by the parent too.

    A parent package (``transforms``) offers every name of its areas (``transforms.lung``...) without
    listing them again: it reads the children's ``__all__``, which costs nothing since the children are
    lazy too. Names of the parent's own modules (``names``) come first.

    Examples:
        >>> names = reexported("lungcad_transforms.transforms", ["lung"])
        >>> names["LungMaskd"]
        'lungcad_transforms.transforms.lung'
    """
    merged = dict(names or {})
    for sub in subpackages:
        child = importlib.import_module(f"{package}.{sub}")
        for name in getattr(child, "__all__", ()):
            merged.setdefault(name, child.__name__)
    return merged
