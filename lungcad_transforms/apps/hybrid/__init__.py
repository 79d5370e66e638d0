"""Hybrid training data: synthetic nodules inserted into real, unannotated chest CTs."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "Background": "lungcad_transforms.apps.hybrid.backgrounds",
    "load_background": "lungcad_transforms.apps.hybrid.backgrounds",
    "cut_case": "lungcad_transforms.apps.hybrid.backgrounds",
    "scan_noise": "lungcad_transforms.apps.hybrid.backgrounds",
    "lesion_voxels": "lungcad_transforms.apps.hybrid.backgrounds",
    "HybridCase": "lungcad_transforms.apps.hybrid.cases",
    "make_case": "lungcad_transforms.apps.hybrid.cases",
    "register": "lungcad_transforms.apps.hybrid.cli",
    "write_hybrid_dataset": "lungcad_transforms.apps.hybrid.dataset",
    "ensure_hybrid_dataset": "lungcad_transforms.apps.hybrid.dataset",
    "KNOWN_REAL_LESIONS": "lungcad_transforms.apps.hybrid.embedded",
    "default_backgrounds": "lungcad_transforms.apps.hybrid.embedded",
    "ensure_embedded_ct_dataset": "lungcad_transforms.apps.hybrid.embedded",
    "nodule_like_spots": "lungcad_transforms.apps.hybrid.hard_negatives",
    "PSF_SIGMA_PX": "lungcad_transforms.apps.hybrid.insertion",
    "NoiseSource": "lungcad_transforms.apps.hybrid.insertion",
    "insert_nodules": "lungcad_transforms.apps.hybrid.insertion",
    "HYBRID_NODULE_KINDS": "lungcad_transforms.apps.hybrid.nodule_models",
    "KIND_WEIGHTS": "lungcad_transforms.apps.hybrid.nodule_models",
    "NoduleModel": "lungcad_transforms.apps.hybrid.nodule_models",
    "draw_diameter_mm": "lungcad_transforms.apps.hybrid.nodule_models",
    "draw_nodule_model": "lungcad_transforms.apps.hybrid.nodule_models",
    "LungMaps": "lungcad_transforms.apps.hybrid.placement",
    "lung_maps": "lungcad_transforms.apps.hybrid.placement",
    "place_nodules": "lungcad_transforms.apps.hybrid.placement",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
