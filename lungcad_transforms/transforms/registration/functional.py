"""Pure functions of image registration: ITK-Elastix mutual-information registration, its transform as a
4x4 matrix, resampling through it, and the quality figures (normalised mutual information, mask overlap)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor

from lungcad_transforms.errors import InputError
from lungcad_transforms.utils.atomic import atomic_file

__all__ = [
    "REGISTRATION_TRANSFORMS",
    "elastix_parameter_map",
    "register_mutual_information",
    "transform_matrix_lps",
    "resample_through",
    "normalized_mutual_information",
    "mask_dice",
    "rigid_error",
    "save_registration",
]

#: the transforms a registration may use: Elastix's names of them
REGISTRATION_TRANSFORMS = {"rigid": "EulerTransform", "affine": "AffineTransform"}


def _itk():
    try:
        import itk

        itk.ParameterObject  # noqa: B018  (present only with the itk-elastix wheel)
    except (ImportError, AttributeError) as err:
        raise ImportError(
            "mutual-information registration needs ITK-Elastix: pip install 'lungcad[registration]'"
        ) from err
    return itk


def _to_itk(image: MetaTensor):
    # built here rather than with monai.data.itk_torch_bridge, which reads the affine as LPS unless the
    # meta says "space: RAS"; lungcad's affines are RAS (load_image), converted in data/coords
    from lungcad_transforms.data.coords import ras_to_lps_affine

    itk = _itk()
    affine = ras_to_lps_affine(np.asarray(image.affine, dtype=np.float64))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    array = np.ascontiguousarray(np.asarray(image.detach().cpu().numpy()[0], dtype=np.float32).T)
    out = itk.image_from_array(array)  # ITK index (i, j, k) = tensor index (x, y, z)
    out.SetOrigin([float(v) for v in affine[:3, 3]])
    out.SetSpacing([float(v) for v in spacing])
    out.SetDirection(itk.matrix_from_array(np.ascontiguousarray(affine[:3, :3] / spacing)))
    return out


def elastix_parameter_map(
    transform: str = "rigid", iterations: int = 800, resolutions: int = 3, samples: int = 4096
) -> Any:
    """The Elastix parameter map of a Mattes mutual-information registration.

    Elastix's default map for ``transform`` with: the image centres aligned first when the world boxes
    disagree is *not* done (world geometry is the starting point), linear final interpolation (no
    negative SUV from B-spline overshoot), 64 histogram bins, and ``iterations`` / ``resolutions`` / ``samples`` set.

    Args:
        transform: ``"rigid"`` (Euler, 6 parameters) or ``"affine"`` (12).
        iterations: optimiser iterations per resolution.
        resolutions: levels of the image pyramid.
        samples: random spatial samples of the metric per iteration.
    """
    if transform not in REGISTRATION_TRANSFORMS:
        raise ValueError(f"transform must be one of {sorted(REGISTRATION_TRANSFORMS)}, got {transform!r}")
    itk = _itk()
    params = itk.ParameterObject.New().GetDefaultParameterMap(transform, int(resolutions))
    params["Metric"] = ["AdvancedMattesMutualInformation"]
    params["NumberOfHistogramBins"] = ["64"]  # 32 bins left 1 degree / 2 mm of rotation on phantom PET/MR
    params["MaximumNumberOfIterations"] = [str(int(iterations))]
    params["NumberOfSpatialSamples"] = [str(int(samples))]
    params["FinalBSplineInterpolationOrder"] = ["1"]
    params["WriteResultImage"] = ["false"]
    params["DefaultPixelValue"] = ["0"]
    return params


def register_mutual_information(
    fixed: MetaTensor, moving: MetaTensor, transform: str = "rigid", iterations: int = 800, seed: int = 0
) -> dict[str, Any]:
    """Register ``moving`` to ``fixed`` by Mattes mutual information with ITK-Elastix.

    The optimisation starts from the images' world geometry (identity in world coordinates).

    Args:
        fixed: (1, X, Y, Z) image whose grid is kept (the MR).
        moving: (1, X, Y, Z) image to move (the PET).
        transform: ``"rigid"`` or ``"affine"``.
        iterations: optimiser iterations per resolution.
        seed: Elastix's random sampler seed (a run is then reproducible).

    Returns:
        ``{"transform": ..., "matrix_lps": 4x4, "parameters": [...], "center_lps": [...],
        "parameter_map": {key: [values]}}`` (Elastix's TransformParameters); ``matrix_lps`` maps a fixed-image point (LPS mm) to the moving
        image point that lands on it.

    Raises:
        InputError: the registration failed, e.g. because the two images do not overlap in world space.
    """
    itk = _itk()
    params = elastix_parameter_map(transform, iterations)
    params["RandomSeed"] = [str(int(seed))]
    parameter_object = itk.ParameterObject.New()
    parameter_object.AddParameterMap(params)
    try:
        _, result = itk.elastix_registration_method(
            _to_itk(fixed), _to_itk(moving), parameter_object=parameter_object, log_to_console=False
        )
    except RuntimeError as err:
        where = str(moving.meta.get("filename_or_obj", "<moving>"))
        raise InputError(where, f"registration onto {fixed.meta.get('filename_or_obj', '<fixed>')} failed "
                                f"(do the two images overlap in world space?): {str(err).strip()[-300:]}") from err  # fmt: skip
    # a plain dict of string lists: picklable and collatable, and what ParameterObject.AddParameterMap takes
    parameter_map = {str(k): [str(v) for v in vals] for k, vals in dict(result.GetParameterMap(0)).items()}
    values = [float(v) for v in parameter_map["TransformParameters"]]
    centre = [float(v) for v in parameter_map["CenterOfRotationPoint"]]
    return {
        "transform": transform,
        "parameters": values,
        "center_lps": centre,
        "matrix_lps": transform_matrix_lps(transform, values, centre).tolist(),
        "parameter_map": parameter_map,
    }


def transform_matrix_lps(transform: str, parameters: list[float], center_lps: list[float]) -> np.ndarray:
    """The 4x4 homogeneous matrix (LPS mm) of an Elastix Euler or affine transform about its centre.

    ITK builds the matrix (its own Euler angle convention), so nothing is re-derived here.

    Examples:
        >>> m = transform_matrix_lps("rigid", [0, 0, 0, 1.0, 2.0, 3.0], [0, 0, 0])  # doctest: +SKIP
        >>> m[:3, 3].tolist()  # doctest: +SKIP
        [1.0, 2.0, 3.0]
    """
    itk = _itk()
    if transform == "rigid":
        tfm = itk.Euler3DTransform[itk.D].New()
    elif transform == "affine":
        tfm = itk.AffineTransform[itk.D, 3].New()
    else:
        raise ValueError(f"transform must be one of {sorted(REGISTRATION_TRANSFORMS)}, got {transform!r}")
    tfm.SetCenter([float(c) for c in center_lps])
    params = itk.OptimizerParameters[itk.D](len(parameters))
    for i, v in enumerate(parameters):
        params[i] = float(v)
    tfm.SetParameters(params)
    out = np.eye(4)
    out[:3, :3] = itk.array_from_matrix(tfm.GetMatrix())
    out[:3, 3] = np.asarray(tfm.GetOffset(), dtype=float)
    return out


def resample_through(
    moving: MetaTensor, like: MetaTensor, matrix_lps: np.ndarray | None = None, mode: str = "linear"
) -> MetaTensor:
    """Resample ``moving`` onto the grid of ``like`` through a fixed->moving LPS matrix (identity: world).

    Outside the moving image's field of view the result is 0.

    Args:
        moving: (1, X, Y, Z) image.
        like: (1, X, Y, Z) image whose grid, affine and metadata the result takes.
        matrix_lps: 4x4 from :func:`register_mutual_information`; ``None`` resamples on world geometry.
        mode: ``"linear"`` or ``"nearest"`` (masks).
    """
    itk = _itk()
    image = _to_itk(moving)
    reference = _to_itk(like)
    tfm = itk.AffineTransform[itk.D, 3].New()
    if matrix_lps is not None:
        m = np.asarray(matrix_lps, dtype=float)
        tfm.SetMatrix(itk.matrix_from_array(np.ascontiguousarray(m[:3, :3])))
        tfm.SetTranslation([float(v) for v in m[:3, 3]])
    interpolator = (
        itk.NearestNeighborInterpolateImageFunction
        if mode == "nearest"
        else itk.LinearInterpolateImageFunction
    ).New(image)
    out = itk.resample_image_filter(
        image, transform=tfm, interpolator=interpolator, reference_image=reference,
        use_reference_image=True, default_pixel_value=0.0,
    )  # fmt: skip
    array = np.asarray(itk.array_from_image(out), dtype=np.float32).T  # back to the tensor's (x, y, z)
    result = MetaTensor(torch.from_numpy(np.ascontiguousarray(array))[None], affine=like.affine)
    result.meta.update({k: v for k, v in like.meta.items() if k not in ("affine", "original_affine")})
    return result


def normalized_mutual_information(
    a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray, where: Any = None, bins: int = 32
) -> float:
    """Studholme's normalised mutual information (H(A) + H(B)) / H(A, B) of two images on one grid.

    1 means independent, 2 identical up to a relabelling of intensities (scikit-image's definition).

    Args:
        a, b: images of one shape.
        where: optional boolean mask of the voxels to use (e.g. the moving image's field of view).
        bins: histogram bins per image.
    """
    from skimage.metrics import normalized_mutual_information as nmi

    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if where is not None:
        keep = np.asarray(where, dtype=bool).ravel()
        x, y = x[keep], y[keep]
    if x.size < 2:
        return float("nan")
    return float(nmi(x, y, bins=bins))


def mask_dice(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> float:
    """Dice overlap of two binary masks on one grid (MONAI's ``compute_dice``); NaN when both are empty."""
    from monai.metrics import compute_dice

    x = torch.as_tensor(np.asarray(a) > 0.5, dtype=torch.float32).reshape(1, 1, -1)
    y = torch.as_tensor(np.asarray(b) > 0.5, dtype=torch.float32).reshape(1, 1, -1)
    if not bool(x.any() or y.any()):
        return float("nan")
    return float(compute_dice(x, y, include_background=True, ignore_empty=False).item())


def rigid_error(found_lps: np.ndarray, true_lps: np.ndarray, at_lps: Any) -> dict[str, float]:
    """How far a found fixed->moving transform is from the true one: residual rotation angle (degrees)
    and the displacement (mm) it leaves at the point ``at_lps`` (e.g. the fixed image's centre).

    Examples:
        >>> rigid_error(np.eye(4), np.eye(4), [0, 0, 0])
        {'rotation_deg': 0.0, 'translation_mm': 0.0}
    """
    residual = np.linalg.inv(np.asarray(true_lps, float)) @ np.asarray(found_lps, float)
    cos = np.clip((np.trace(residual[:3, :3]) - 1.0) / 2.0, -1.0, 1.0)
    point = np.append(np.asarray(at_lps, float), 1.0)
    return {
        "rotation_deg": round(float(np.degrees(np.arccos(cos))), 6),
        "translation_mm": round(float(np.linalg.norm((residual @ point - point)[:3])), 6),
    }


def save_registration(record: Mapping[str, Any], out_dir: str | os.PathLike, name: str) -> dict[str, Path]:
    """Write a registration next to the outputs: ``<name>.json`` (matrix, figures) and, when Elastix ran,
    ``<name>_elastix.txt`` (its TransformParameters file, readable by transformix). Both atomically."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{name}.json"}
    parameter_map = record.get("parameter_map")
    if parameter_map is not None:
        itk = _itk()
        paths["elastix"] = out / f"{name}_elastix.txt"
        parameter_object = itk.ParameterObject.New()
        parameter_object.AddParameterMap({k: list(v) for k, v in parameter_map.items()})
        with atomic_file(paths["elastix"]) as tmp:
            parameter_object.WriteParameterFile(str(tmp))
    plain = {k: v for k, v in record.items() if k != "parameter_map"}
    with atomic_file(paths["json"]) as tmp:
        tmp.write_text(json.dumps(plain, indent=2, default=float) + "\n", encoding="utf-8")
    return paths
