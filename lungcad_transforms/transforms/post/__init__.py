"""Post-processing: candidates from probability maps."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "ExtractCandidates": "lungcad_transforms.transforms.post.array",
    "ExtractCandidatesd": "lungcad_transforms.transforms.post.dictionary",
    "ExtractCandidatesD": "lungcad_transforms.transforms.post.dictionary",
    "ExtractCandidatesDict": "lungcad_transforms.transforms.post.dictionary",
    "extract_candidates": "lungcad_transforms.transforms.post.functional",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
