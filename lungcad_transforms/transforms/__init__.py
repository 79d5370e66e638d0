"""lungcad transforms, MONAI style: an array transform in ``<area>/array.py``, its dictionary twin and
aliases in ``<area>/dictionary.py``, pure functions in ``<area>/functional.py``."""

from __future__ import annotations

from lungcad_transforms.transforms.intensity.array import (
    EmptyMaskWarning,
    MaskedNormalizeIntensity,
    SUVBodyWeight,
)
from lungcad_transforms.transforms.intensity.dictionary import (
    MaskedNormalizeIntensityD,
    MaskedNormalizeIntensityd,
    MaskedNormalizeIntensityDict,
    SUVBodyWeightD,
    SUVBodyWeightd,
    SUVBodyWeightDict,
)
from lungcad_transforms.transforms.io.array import LoadScan, ValidateCT
from lungcad_transforms.transforms.io.dictionary import (
    LoadScanD,
    LoadScand,
    LoadScanDict,
    RequireForegroundD,
    RequireForegroundd,
    RequireForegroundDict,
    SaveNiftiD,
    SaveNiftid,
    SaveNiftiDict,
    ValidateCTD,
    ValidateCTd,
    ValidateCTDict,
)
from lungcad_transforms.transforms.lung.array import LungMask, NoLungWarning
from lungcad_transforms.transforms.lung.dictionary import LungMaskD, LungMaskd, LungMaskDict
from lungcad_transforms.transforms.lung.functional import dilate_ellipsoid
from lungcad_transforms.transforms.post.array import ExtractCandidates
from lungcad_transforms.transforms.post.dictionary import (
    ExtractCandidatesD,
    ExtractCandidatesd,
    ExtractCandidatesDict,
)
from lungcad_transforms.transforms.post.functional import CANDIDATE_COLUMNS, extract_candidates
from lungcad_transforms.transforms.spatial.array import MultiScalePatch, RandPhysicalShift
from lungcad_transforms.transforms.spatial.dictionary import (
    RandPhysicalShiftD,
    RandPhysicalShiftd,
    RandPhysicalShiftDict,
)
from lungcad_transforms.transforms.spatial.functional import (
    DEFAULT_HU_WINDOW,
    DEFAULT_PATCH_SIZE,
    DEFAULT_SCALES_MM,
    PATCH_KEYS,
    extract_multiscale_patches,
    patch_affines,
)
