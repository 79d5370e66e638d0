"""Post-processing: candidates from probability maps."""

from __future__ import annotations

import importlib

_NAMES = {
    "ExtractCandidates": "lungcad_transforms.transforms.post.array",
    "ExtractCandidatesd": "lungcad_transforms.transforms.post.dictionary",
    "ExtractCandidatesD": "lungcad_transforms.transforms.post.dictionary",
    "ExtractCandidatesDict": "lungcad_transforms.transforms.post.dictionary",
    "extract_candidates": "lungcad_transforms.transforms.post.functional",
}
_SUBPACKAGES = ()
__all__ = sorted(_NAMES)


def __getattr__(name: str):
    # names and subpackages load on first use: importing a package pulls in nothing heavy (itk, monai)
    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES) | set(_SUBPACKAGES))
