"""Drive a bundle's inference sections the way MONAI Deploy's ``MonaiBundleInferenceOperator`` does.

MONAI Deploy (monai-deploy-app-sdk) packages a bundle into a MONAI Application Package: its
``MonaiBundleInferenceOperator`` parses the bundle's inference config(s), takes three items from them,
``preprocessing``, ``inferer`` and ``postprocessing`` (transforms whose class name holds ``LoadImage`` or
``SaveImage`` removed: the application does its own I/O), runs the TorchScript ``models/model.ts`` and
exchanges data keyed by the input and output names of ``network_data_format``. This harness follows the
operator's ``compute`` step by step, so a test can show that a bundle's sections work under that contract
without the SDK (which is not a dependency of this project):

1. inputs: ``{input name: MetaTensor}`` of one sample, no batch dimension, or ``(array, metadata)`` pairs,
   made a ``MetaTensor`` with ``MetaTensor.ensure_torch_and_prune_meta`` as the operator does (for a DICOM
   series, its ``DICOMSeriesToVolumeOperator`` volume: ``(X, Y, Z)``, no channel, see
   :func:`sdk_volume`);
2. ``preprocessing(inputs)`` (per value when its first transform is not a dictionary transform);
3. the first input is taken out and given a batch dimension; every OTHER tensor left in the data goes to
   the inferer as a keyword argument (so a preprocessing that leaves helper tensors behind fails here as it
   would there); ``inferer(inputs=batch, network=torch.jit.load(model.ts), **others)``; the first item of
   the batch output is kept;
4. ``postprocessing({output name: prediction} | preprocessed inputs)`` (the inputs win a name clash);
5. outputs: ``{output name: value}``: an ``image`` output as MONAI gives it (channel first; the operator
   then makes it an SDK ``Image``: :func:`sdk_image_array`), a ``probabilities`` output as the operator
   reports it, the ``channel_def`` name of each value and the values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DISALLOWED_PRE", "DISALLOWED_POST", "sdk_volume", "sdk_image_array", "BundleInferenceHarness"]

DISALLOWED_PRE = ("LoadImage", "SaveImage")
DISALLOWED_POST = ("LoadImage", "SaveImage")


def sdk_volume(array: Any, affine_ras: Any, **tags: Any) -> tuple[Any, dict[str, Any]]:
    """A 3-D scan as the operator receives a DICOM series from ``DICOMSeriesToVolumeOperator``.

    Args:
        array: ``(X, Y, Z)`` voxels in the series' own index order (columns, rows, slices).
        affine_ras: the series' NIfTI (RAS) affine, which the SDK stores as ``nifti_affine_transform`` and
            uses as the volume's affine while labelling the volume LPS.
        tags: DICOM keywords to add to the metadata (``SeriesInstanceUID=...``, ``Modality="CT"``).

    Returns:
        ``(array, metadata)`` as the operator's ``_convert_from_image_dicom_source`` returns them.
    """
    import numpy as np

    affine = np.asarray(affine_ras, dtype=np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    meta = {
        "nifti_affine_transform": affine.copy(),
        "original_affine": affine.copy(),
        "affine": affine.copy(),
        "space": "LPS",
        "spacing": spacing,
        "spatial_shape": np.asarray(np.shape(array)),
        "original_channel_dim": "no_channel",
        **tags,
    }
    return np.asarray(array), meta


def sdk_image_array(value: Any) -> Any:
    """The array of the SDK ``Image`` the operator makes of an ``image`` output: channel squeezed, ``(X, Y, Z)``
    swapped to the SDK's ``(Z, Y, X)``, cast to uint8 (the operator's ``_send_output``)."""
    import numpy as np
    import torch

    array = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    return np.swapaxes(np.squeeze(array, 0), 0, 2).astype(np.uint8)


def _filtered(compose: Any, disallowed: tuple[str, ...]) -> Any:
    if not hasattr(compose, "transforms"):
        raise TypeError(
            f"{type(compose).__name__} is not a Compose: the operator filters a Compose's transforms"
        )
    compose.transforms = tuple(
        t for t in compose.transforms if not any(d in type(t).__name__ for d in disallowed)
    )
    return compose


class BundleInferenceHarness:
    """A bundle's ``preprocessing`` / ``inferer`` / ``postprocessing`` run on its TorchScript network.

    Args:
        bundle: the bundle folder.
        model_file: the TorchScript network (default ``<bundle>/models/model.ts``, as ``ckpt_export`` writes it).
        config_names: the configs to parse, in order (the operator's ``BundleConfigNames.config_names``);
            lungcad's ``inference.json`` is an overlay on ``train.json``.
        override: config values to set before parsing (e.g. ``{"bundle_root": ...}``).

    Examples:
        >>> harness = BundleInferenceHarness("dist/lung_nodule_ct_fp_reduction")  # doctest: +SKIP
        >>> harness({"image": torch.rand(3, 20, 20, 12)})["pred"]["result"]  # doctest: +SKIP
        ['nodule (logit; sigmoid gives the probability)']
    """

    def __init__(
        self,
        bundle: str | os.PathLike,
        model_file: str | os.PathLike | None = None,
        config_names: tuple[str, ...] = ("train.json", "inference.json"),
        override: dict[str, Any] | None = None,
    ) -> None:
        import torch
        from monai.bundle import ConfigParser

        bundle = Path(bundle)
        self.parser = ConfigParser()
        self.parser.read_meta(str(bundle / "configs" / "metadata.json"))
        self.parser.read_config([str(bundle / "configs" / name) for name in config_names])
        for key, value in (override or {}).items():
            self.parser[key] = value
        fmt = self.parser.get("_meta_#network_data_format")
        self.inputs: dict[str, Any] = dict(fmt["inputs"])
        self.outputs: dict[str, Any] = dict(fmt["outputs"])
        self.preprocessing = _filtered(self.parser.get_parsed_content("preprocessing"), DISALLOWED_PRE)
        self.postprocessing = _filtered(self.parser.get_parsed_content("postprocessing"), DISALLOWED_POST)
        self.inferer = self.parser.get_parsed_content("inferer")
        model_file = Path(model_file) if model_file is not None else bundle / "models" / "model.ts"
        self.network = torch.jit.load(str(model_file), map_location="cpu").eval()

    def __call__(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Run one sample: ``inputs`` maps every ``network_data_format`` input name to its tensor."""
        import torch
        from monai.data import MetaTensor
        from monai.transforms import MapTransform
        from monai.utils import ensure_tuple

        missing = set(self.inputs) - set(inputs)
        if missing:
            raise KeyError(
                f"inputs lack {sorted(missing)} (network_data_format declares {sorted(self.inputs)})"
            )
        data: dict[str, Any] = {}
        for name in self.inputs:
            value, meta = inputs[name] if isinstance(inputs[name], tuple) else (inputs[name], None)
            if not isinstance(value, MetaTensor) or meta is not None:
                value = MetaTensor.ensure_torch_and_prune_meta(value, dict(meta or {}))
            data[name] = value
        first, *others = list(self.inputs)
        with torch.no_grad():
            if isinstance(next(iter(self.preprocessing.transforms), None), MapTransform):
                data = self.preprocessing(data)
            else:
                data = {k: self.preprocessing(v) for k, v in data.items()}
            first_value = data.pop(first)
            extra = {k: v[None] for k, v in data.items() if isinstance(v, torch.Tensor)}
            extra.update({k: data[k] for k in others if not isinstance(data[k], torch.Tensor)})
            pred = ensure_tuple(self.inferer(inputs=first_value[None], network=self.network, **extra))[0]
            if isinstance(next(iter(self.postprocessing.transforms), None), MapTransform):
                result = self.postprocessing({next(iter(self.outputs)): pred, **data, first: first_value})
            else:
                result = {next(iter(self.outputs)): self.postprocessing(pred)}
        out = {}
        for name, spec in self.outputs.items():
            value = result[name]
            if spec.get("type") == "probabilities":
                names = [spec["channel_def"][str(int(v))] for v in torch.as_tensor(value).flatten()]
                out[name] = {"result": names, "probabilities": torch.as_tensor(value).cpu().numpy()}
            else:
                out[name] = value
        return out
