"""Drive a bundle's inference sections the way MONAI Deploy's ``MonaiBundleInferenceOperator`` does.

MONAI Deploy (monai-deploy-app-sdk) packages a bundle into a MONAI Application Package: its
``MonaiBundleInferenceOperator`` parses the bundle's inference config(s), takes three items from them,
``preprocessing``, ``inferer`` and ``postprocessing`` (transforms whose class name holds ``LoadImage`` or
``SaveImage`` removed from the first, ``SaveImage`` from the last: the application does its own I/O), runs the
TorchScript ``models/model.ts`` and exchanges data keyed by the input and output names of
``network_data_format``. This harness follows the same steps, so a test can show that a bundle's sections work
under that contract without the SDK (which is not a dependency of this project):

1. inputs: ``{input name: MetaTensor}`` of one sample (no batch dimension);
2. ``preprocessing(inputs)``; the first input is taken out and given a batch dimension;
3. ``inferer(inputs=batch, network=torch.jit.load(model.ts))``; the first item of the batch output is kept;
4. ``postprocessing({output name: prediction, **preprocessed inputs})``;
5. outputs: ``{output name: value}``; a ``probabilities`` output is reported as the operator reports it, the
   ``channel_def`` name of each value and the values.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["DISALLOWED_PRE", "DISALLOWED_POST", "BundleInferenceHarness"]

DISALLOWED_PRE = ("LoadImage", "SaveImage")
DISALLOWED_POST = ("SaveImage",)


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

        missing = set(self.inputs) - set(inputs)
        if missing:
            raise KeyError(
                f"inputs lack {sorted(missing)} (network_data_format declares {sorted(self.inputs)})"
            )
        data = {k: v if isinstance(v, MetaTensor) else MetaTensor(v) for k, v in inputs.items()}
        first = next(iter(self.inputs))
        with torch.no_grad():
            data = self.preprocessing(data)
            batch = data[first][None]
            pred = self.inferer(inputs=batch, network=self.network)[0]
            result = self.postprocessing({**data, next(iter(self.outputs)): pred})
        out = {}
        for name, spec in self.outputs.items():
            value = result[name]
            if spec.get("type") == "probabilities":
                names = [spec["channel_def"][str(int(v))] for v in torch.as_tensor(value).flatten()]
                out[name] = {"result": names, "probabilities": torch.as_tensor(value).cpu().numpy()}
            else:
                out[name] = value
        return out
