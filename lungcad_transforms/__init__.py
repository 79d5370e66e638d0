"""lungcad: lung-cancer CAD transforms, I/O, networks, metrics and apps shared by the lungcad MONAI bundles.

Bundles import this package (``"imports": ["$import lungcad_transforms"]``) and name its parts by their
layer, as MONAI does: ``"_target_": "lungcad_transforms.transforms.LungMaskd"``. The layers
(``utils`` < ``data`` < ``transforms`` / ``networks`` < ``metrics`` / ``handlers`` / ``visualize`` < ``apps``)
and the most used names below are imported on first use, so ``import lungcad_transforms`` loads neither
itk, pydicom nor any optional extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lungcad_transforms.utils.lazy import lazy_exports

__version__ = "0.1.0"

_SUBPACKAGES = (
    "apps",
    "data",
    "handlers",
    "metrics",
    "networks",
    "transforms",
    "utils",
    "visualize",
    "errors",
    "cli",
)

# public name -> the subpackage (or module) that defines it
_PUBLIC = {
    "InputError": "errors",
    **dict.fromkeys(("inside_volume", "voxel_to_world", "world_to_voxel"), "data.coords"),
    **dict.fromkeys(("read_annotations", "read_candidates", "write_results_csv", "write_annotations_csv"), "data.tables"),
    **dict.fromkeys(("find_images", "load_image", "ITKDicomSeriesReader"), "data"),
    **dict.fromkeys(("write_dicom_series", "write_metaimage", "write_nifti"), "data"),
    **dict.fromkeys(("FROCResult", "froc_score"), "metrics"),
    "evaluate_files": "apps.luna16",
    "save_froc_report": "visualize",
    **dict.fromkeys(
        (
            "LungMask", "LungMaskd", "LungMaskD", "LungMaskDict", "NoLungWarning",
            "MaskedNormalizeIntensity", "MaskedNormalizeIntensityd", "MaskedNormalizeIntensityD",
            "MaskedNormalizeIntensityDict", "SUVBodyWeight", "SUVBodyWeightd", "SUVBodyWeightD",
            "SUVBodyWeightDict", "ValidateCT", "ValidateCTd", "ValidateCTD", "ValidateCTDict",
        ),
        "transforms",
    ),
    "suv_body_weight_factor": "data",
    **dict.fromkeys(
        ("CTPhantom", "MRPhantom", "Nodule", "PETPhantom", "make_ct_phantom", "make_mr_phantom",
         "make_pet_phantom", "write_phantom_dataset"),
        "apps.phantoms",
    ),
}  # fmt: skip

__all__ = sorted(_PUBLIC)


__getattr__, __dir__ = lazy_exports(
    __name__, {n: f"{__name__}.{m}" for n, m in _PUBLIC.items()}, _SUBPACKAGES
)


if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from lungcad_transforms.data import find_images, load_image  # noqa: F401
    from lungcad_transforms.transforms import LungMask, LungMaskd  # noqa: F401
