"""3D Grad-CAM for candidate classifiers, and mapping heatmaps back onto the scan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from monai.data import MetaTensor
from monai.transforms import SpatialResample
from monai.visualize import GradCAM

__all__ = [
    "unwrap_network",
    "default_target_layer",
    "normalize_heatmaps",
    "CandidateGradCAM",
    "captum_gradcam",
    "heatmap_scale_index",
    "heatmap_to_scan",
    "peak_inside_nodule",
]


_TARGET_LAYERS = {"MGICNN": "final_block", "Small3DCNN": "conv3"}


def unwrap_network(network: nn.Module) -> nn.Module:
    """The network itself: a DDP / ``DataParallel`` wrapper's ``.module``, else ``network`` unchanged.

    Hooks (Grad-CAM, CAM) and attribute look-ups (``input_scale``, layer names) need the real network,
    not the wrapper a multi-GPU config puts around it.

    Examples:
        >>> net = nn.Linear(2, 1)
        >>> unwrap_network(nn.DataParallel(net)) is net, unwrap_network(net) is net
        (True, True)
    """
    module = getattr(network, "module", None)
    return module if isinstance(module, nn.Module) else network


# apps/cad/nodules.py still imports the old private name
_unwrap = unwrap_network


def default_target_layer(network: nn.Module) -> str:
    """Name of the last convolution block of a lungcad FP-reduction network (the Grad-CAM layer).

    Examples:
        >>> from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN
        >>> default_target_layer(Small3DCNN(patch_size=(20, 20, 12)))
        'conv3'
    """
    name = type(unwrap_network(network)).__name__
    if name in _TARGET_LAYERS:
        return _TARGET_LAYERS[name]
    convs = [n for n, m in unwrap_network(network).named_modules() if isinstance(m, nn.Conv3d)]
    if not convs:
        raise ValueError(f"{name} has no 3-D convolution to compute Grad-CAM on; give target_layer")
    return convs[-1]


def normalize_heatmaps(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of a batch (B, 1, ...) to [0, 1], maximum -> 1; an all-zero map stays zero.

    Examples:
        >>> normalize_heatmaps(torch.tensor([[[0.0, 2.0, 4.0]]]))
        tensor([[[0.0000, 0.5000, 1.0000]]])
    """
    flat = maps.reshape(maps.shape[0], -1)
    low = flat.min(dim=1).values.view(-1, *[1] * (maps.ndim - 1))
    span = (flat.max(dim=1).values - flat.min(dim=1).values).view(-1, *[1] * (maps.ndim - 1))
    return torch.where(span > 0, (maps - low) / span.clamp_min(1e-12), torch.zeros_like(maps))


class CandidateGradCAM:
    """3-D Grad-CAM of the nodule logit on the patch grid (MONAI ``GradCAM``), normalised to [0, 1].

    Args:
        network: an FP-reduction network with one output logit (``MGICNN``, ``Small3DCNN``).
        target_layer: the layer to explain; default the network's last convolution block.

    Examples:
        >>> from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN
        >>> cam = CandidateGradCAM(Small3DCNN(patch_size=(20, 20, 12)))
        >>> cam(torch.rand(2, 3, 20, 20, 12)).shape  # three scales in, one heatmap per candidate out
        torch.Size([2, 1, 20, 20, 12])
    """

    def __init__(self, network: nn.Module, target_layer: str | None = None) -> None:
        self.network = unwrap_network(network)
        self.target_layer = target_layer or default_target_layer(self.network)
        self.cam = GradCAM(
            nn_module=self.network, target_layers=self.target_layer, postprocessing=normalize_heatmaps
        )

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            # class 0 is the only output: the nodule logit
            maps = self.cam(patches, class_idx=0)
        return maps.detach()


def captum_gradcam(
    network: nn.Module, patches: torch.Tensor, target_layer: str | None = None
) -> torch.Tensor:
    """The same Grad-CAM through captum's ``LayerGradCam``, upsampled and normalised like :class:`CandidateGradCAM`.

    Used as an independent cross-check of the MONAI path.
    """
    from captum.attr import LayerAttribution, LayerGradCam

    net = unwrap_network(network)
    layer_name = target_layer or default_target_layer(net)
    layer = dict(net.named_modules())[layer_name]
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            attribution = LayerGradCam(net, layer).attribute(patches, target=0, relu_attributions=True)
    finally:
        net.train(was_training)
    upsampled = LayerAttribution.interpolate(
        attribution, tuple(patches.shape[2:]), interpolate_mode="trilinear"
    )
    return normalize_heatmaps(upsampled.detach())


def heatmap_scale_index(network: nn.Module) -> int:
    """Which scale's geometry a network's heatmap is placed with (see the module docstring)."""
    scale = getattr(unwrap_network(network), "input_scale", None)
    return int(scale) if scale is not None else 0


def heatmap_to_scan(
    heatmap: np.ndarray | torch.Tensor,
    patch_affine: np.ndarray,
    scan_affine: np.ndarray,
    scan_shape: Sequence[int],
) -> tuple[np.ndarray, tuple[slice, slice, slice]]:
    """Resample a patch-grid heatmap into the scan's voxel grid, over the patch's bounding box.

    Args:
        heatmap: (X', Y', Z') or (1, X', Y', Z') on the patch grid.
        patch_affine: the patch's voxel -> RAS affine.
        scan_affine: the scan's voxel -> RAS affine.
        scan_shape: the scan's spatial shape.

    Returns:
        ``(values, box)``: the heatmap on the scan grid inside ``box`` (a tuple of slices into the scan;
        zero outside the patch), ready for ``volume[box] = values``.

    Examples:
        >>> patch_affine = np.diag([1.25, 1.25, 1.25, 1.0]); patch_affine[:3, 3] = 10.0
        >>> values, box = heatmap_to_scan(np.ones((16, 16, 16)), patch_affine, np.eye(4), (64, 64, 64))
        >>> values.shape, box[0]
        ((22, 22, 22), slice(9, 31, None))
    """
    heat = torch.as_tensor(
        np.asarray(heatmap.detach().cpu() if isinstance(heatmap, torch.Tensor) else heatmap),
        dtype=torch.float32,
    )
    heat = heat[None] if heat.ndim == 3 else heat
    patch_affine = np.asarray(patch_affine, dtype=np.float64)
    scan_affine = np.asarray(scan_affine, dtype=np.float64)
    size = np.asarray(heat.shape[1:], dtype=np.float64)
    corners = np.array(np.meshgrid(*[[-0.5, s - 0.5] for s in size], indexing="ij")).reshape(3, -1).T
    to_scan = np.linalg.solve(scan_affine, patch_affine)
    in_scan = corners @ to_scan[:3, :3].T + to_scan[:3, 3]
    lo = np.maximum(np.floor(in_scan.min(axis=0)).astype(int), 0)
    hi = np.minimum(np.ceil(in_scan.max(axis=0)).astype(int) + 1, np.asarray(scan_shape, dtype=int))
    if np.any(hi <= lo):
        return np.zeros((0, 0, 0), np.float32), (slice(0, 0), slice(0, 0), slice(0, 0))
    box_affine = scan_affine.copy()
    box_affine[:3, 3] = scan_affine[:3, :3] @ lo + scan_affine[:3, 3]
    src = MetaTensor(heat, affine=torch.as_tensor(patch_affine))
    resampled = SpatialResample(mode="bilinear", padding_mode="zeros", dtype=torch.float32)(
        src, dst_affine=torch.as_tensor(box_affine), spatial_size=tuple(int(v) for v in hi - lo)
    )
    values = np.asarray(resampled.detach().cpu())[0].astype(np.float32)
    return values, tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def peak_inside_nodule(
    peak_lps: Sequence[float], seriesuid: str, annotations: Sequence[Mapping[str, Any]]
) -> bool:
    """Whether a point lies inside an annotated nodule of its scan (closer to its centre than its radius).

    Examples:
        >>> nodule = {"seriesuid": "1.2.3", "coordX": 10.0, "coordY": -20.0, "coordZ": 30.0, "diameter_mm": 8.0}
        >>> peak_inside_nodule((12.0, -20.0, 31.0), "1.2.3", [nodule]), peak_inside_nodule((15.0, -20.0, 30.0), "1.2.3", [nodule])
        (True, False)
    """
    for row in annotations:
        if str(row["seriesuid"]) != seriesuid:
            continue
        d2 = sum(
            (float(p) - float(row[c])) ** 2
            for p, c in zip(peak_lps, ("coordX", "coordY", "coordZ"), strict=True)
        )
        if d2 < (float(row["diameter_mm"]) / 2.0) ** 2:
            return True
    return False
