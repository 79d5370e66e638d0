"""lungcad: lung-cancer CAD transforms, I/O, phantoms and metrics shared by the lungcad MONAI bundles.

Bundles import this package (``"imports": ["$import lungcad_transforms"]``) and use its names in their
configs, e.g. ``"_target_": "lungcad_transforms.LungMaskd"``.
"""

from __future__ import annotations

from lungcad_transforms.coords import (
    inside_volume,
    read_annotations,
    read_candidates,
    voxel_to_world,
    world_to_voxel,
)
from lungcad_transforms.errors import InputError
from lungcad_transforms.froc import (
    FROCResult,
    evaluate_files,
    froc_score,
    save_froc_report,
    write_results_csv,
)
from lungcad_transforms.intensity import (
    MaskedNormalizeIntensity,
    MaskedNormalizeIntensityD,
    MaskedNormalizeIntensityd,
    MaskedNormalizeIntensityDict,
)
from lungcad_transforms.io import (
    ITKDicomSeriesReader,
    ValidateCT,
    ValidateCTD,
    ValidateCTd,
    ValidateCTDict,
    find_images,
    load_image,
)
from lungcad_transforms.lungmask import LungMask, LungMaskD, LungMaskd, LungMaskDict, NoLungWarning
from lungcad_transforms.phantoms import (
    CTPhantom,
    MRPhantom,
    Nodule,
    PETPhantom,
    make_ct_phantom,
    make_mr_phantom,
    make_pet_phantom,
)
from lungcad_transforms.suv import (
    SUVBodyWeight,
    SUVBodyWeightD,
    SUVBodyWeightd,
    SUVBodyWeightDict,
    suv_body_weight_factor,
)
from lungcad_transforms.writers import (
    write_annotations_csv,
    write_dicom_series,
    write_metaimage,
    write_nifti,
    write_phantom_dataset,
)

__version__ = "0.1.0"
