"""Class activation maps of 2-D slice classifiers (CAM, Grad-CAM, captum cross-check) and PET/CT overlays.

CAM and Grad-CAM come from MONAI (``monai.visualize.CAM`` / ``GradCAM``) on the layer and linear head
that ``networks.nets.cam_classifier`` names per backbone; captum's ``LayerGradCam`` gives the same
Grad-CAM by another implementation, as a check. Overlays are drawn as a radiologist reads an axial
slice (patient's right on the left of the picture, anterior at the top), CT and PET side by side.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from lungcad_transforms.utils.atomic import atomic_file
from lungcad_transforms.visualize.gradcam import normalize_heatmaps, unwrap_network

__all__ = [
    "ClassContrast",
    "cell_centred_upsampler",
    "map_cell_centres",
    "slice_cams",
    "captum_slice_gradcam",
    "heatmap_peak",
    "save_petct_cam_png",
]


class ClassContrast(nn.Module):
    """A classifier's logits as each class against the others: ``z_c - mean(z_j, j != c)``.

    A softmax probability depends on differences of logits only, so a map of one class's logit alone also
    shows what every class shares (physiological uptake the network sees in every slice, say) and can peak
    there. For two classes the contrast is the log-odds ``log(p_c / (1 - p_c))``; it is linear in the
    logits, so CAM of a global-average-pooling + linear head stays exact on it.

    Args:
        module: the classifier, or its linear head (both map features to ``(B, K)`` logits).
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.net = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.net(x)
        k = logits.shape[1]
        if k < 2:
            return logits
        return (logits - logits.mean(dim=1, keepdim=True)) * (k / (k - 1))


_CELL_CENTRES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def map_cell_centres(
    network: nn.Module, layer: str, image_shape: Sequence[int], n_probes: int = 8
) -> np.ndarray:
    """Where cell ``j`` of ``layer``'s map is centred in the input: ``offset + stride * j`` per axis.

    A max-pool of 2 centres its output ``j`` on input ``2 j + 0.5``, a "same"-padded stride-2 convolution on
    ``2 j``; MONAI's CAM upsampler (and captum's) assumes ``stride * j + (stride - 1) / 2`` whatever the
    layers. The centre is measured on a geometric twin of the network: every convolution and linear weight
    set to the mean of its inputs, linear (squeeze-and-excitation) gates constant, biases to zero, normalisation to identity, max-pools to average pools of the same window, so
    that what remains is the layers' geometry; the centroid of the input gradient of the central cell, for an
    input of ones, is the cell's centre. Written here because neither MONAI nor captum places map cells by
    the network's own geometry.

    Args:
        network: the classifier (not changed: a copy is probed).
        layer: the target layer's name.
        image_shape: ``(C, H, W)`` of the network's input.

    Returns:
        ``(2, 2)`` array: row 0 the input coordinate of cell 0 along ``H, W``, row 1 the stride.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.MaxPool2d(2))
        >>> map_cell_centres(net, "1", (1, 32, 32)).round(2).tolist()  # cell j at input 4 j + 1
        [[1.0, 1.0], [4.0, 4.0]]
    """
    import copy

    net = unwrap_network(network)
    key = (layer, tuple(int(v) for v in image_shape))
    known = _CELL_CENTRES.setdefault(net, {})
    if key in known:  # the geometry does not change with the weights: once per network and input size
        return known[key].copy()
    twin = copy.deepcopy(net).eval()
    with torch.no_grad():
        for module in twin.modules():
            if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
                module.weight.fill_(1.0 / module.weight[0].numel())  # averages: no overflow however deep
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Linear):
                # inside a feature extractor a linear layer is a squeeze-and-excitation gate: held constant,
                # or its global pooling would pull every centre towards the middle of the image
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.modules.batchnorm._NormBase):
                module.reset_parameters()  # running mean 0, variance 1, weight 1, bias 0: identity in eval
            for name, child in module.named_children():
                if isinstance(child, nn.MaxPool2d):  # a max-pool's window, each position as likely
                    setattr(
                        module,
                        name,
                        nn.AvgPool2d(child.kernel_size, child.stride, child.padding, child.ceil_mode),
                    )
    grabbed: list[torch.Tensor] = []
    hook = dict(twin.named_modules())[layer].register_forward_hook(lambda _m, _i, out: grabbed.append(out))
    try:
        x = torch.ones((1, *image_shape), requires_grad=True)
        with torch.enable_grad():
            twin(x)
            cells = grabbed[-1]  # a module called more than once: its last output, as MONAI's CAM hooks keep
            centre = tuple(int(n) // 2 for n in cells.shape[2:])
            cells[(0, slice(None), *centre)].sum().backward()
        weight = x.grad.detach().abs().sum(dim=(0, 1)).double()
    finally:
        hook.remove()
    stride = np.array([int(image_shape[1 + a]) / int(cells.shape[2 + a]) for a in range(2)])
    grid = np.indices(tuple(weight.shape), dtype=np.float64)
    total = float(weight.sum())
    if total <= 0.0:  # no gradient reached the input: keep the upsamplers' convention
        known[key] = np.stack([(stride - 1.0) / 2.0, stride])
    else:
        centroid = np.array([float((grid[a] * weight.numpy()).sum()) / total for a in range(2)])
        known[key] = np.stack([centroid - stride * np.asarray(centre, dtype=np.float64), stride])
    return known[key].copy()


def cell_centred_upsampler(centres: np.ndarray):
    """MONAI-style upsampler (``upsampler(spatial_size)(maps)``) that puts map cell ``j`` at ``offset + stride * j``.

    Bilinear between cell centres, the border cells' values held beyond them.
    """
    import torch.nn.functional as F

    offset, stride = (np.asarray(v, dtype=np.float64) for v in centres)

    def upsampler(spatial_size: Sequence[int]):
        def upsample(maps: torch.Tensor) -> torch.Tensor:
            axes = []
            for a, (cells, size) in enumerate(zip(maps.shape[-2:], spatial_size, strict=True)):
                u = (torch.arange(int(size), dtype=torch.float64) - offset[a]) / stride[a]  # in cells
                axes.append((2.0 * u / max(int(cells) - 1, 1) - 1.0).clamp(-1.0, 1.0))
            gy, gx = torch.meshgrid(axes[0], axes[1], indexing="ij")
            grid = torch.stack([gx, gy], dim=-1)[None].expand(maps.shape[0], -1, -1, -1).to(maps)
            return F.grid_sample(maps, grid, mode="bilinear", align_corners=True)

        return upsample

    return upsampler


def slice_cams(
    network: nn.Module,
    images: torch.Tensor,
    backbone: str,
    method: str = "cam",
    class_idx: int = 1,
) -> torch.Tensor:
    """CAM or Grad-CAM of class ``class_idx`` against the others, per slice, ``(B, 1, H, W)`` in [0, 1].

    Both explain the class's contrast (:class:`ClassContrast`: for two classes the log-odds its
    probability follows), not its logit alone.

    Args:
        network: a classifier from ``build_cam_classifier`` (DDP wrapper looked through).
        images: ``(B, C, H, W)`` network input.
        backbone: its backbone name (picks the target layer and the linear head).
        method: ``"cam"`` (exact for a GAP + linear head) or ``"gradcam"``.
        class_idx: the class explained (1: cancer).

    Examples:
        >>> from lungcad_transforms.networks.nets.cam_classifier import build_cam_classifier
        >>> net = build_cam_classifier("ressenet", in_channels=3, channels=(4, 8, 8), blocks=(1, 1))
        >>> slice_cams(net, torch.rand(2, 3, 32, 32), "ressenet").shape
        torch.Size([2, 1, 32, 32])
    """
    from monai.visualize import CAM, GradCAM

    from lungcad_transforms.networks.nets.cam_classifier import cam_layers

    net = unwrap_network(network)
    target, fc = cam_layers(backbone)
    upsampler = cell_centred_upsampler(map_cell_centres(net, target, tuple(images.shape[1:])))
    if method == "cam":
        explainer = CAM(
            nn_module=net,
            target_layers=target,
            fc_layers=lambda model: ClassContrast(dict(model.named_modules())[fc]),
            upsampler=upsampler,
            postprocessing=normalize_heatmaps,
        )
        with torch.no_grad():
            # MONAI's CAM takes one class per item of the batch
            return explainer(images, class_idx=[int(class_idx)] * images.shape[0]).detach()
    if method == "gradcam":
        explainer = GradCAM(
            nn_module=ClassContrast(net),
            target_layers=f"net.{target}",
            upsampler=upsampler,
            postprocessing=normalize_heatmaps,
        )
        with torch.enable_grad():
            # a gradient path to the target layer even when the stages before it are frozen
            maps = explainer(images.detach().clone().requires_grad_(True), class_idx=class_idx)
        net.zero_grad(set_to_none=True)
        return maps.detach()
    raise ValueError(f"method must be 'cam' or 'gradcam', got {method!r}")


def captum_slice_gradcam(
    network: nn.Module, images: torch.Tensor, backbone: str, class_idx: int = 1
) -> torch.Tensor:
    """Grad-CAM through captum's ``LayerGradCam`` (bilinear upsampling, [0, 1]): the cross-check of MONAI's."""
    from captum.attr import LayerGradCam

    from lungcad_transforms.networks.nets.cam_classifier import cam_layers

    net = unwrap_network(network)
    layer = dict(net.named_modules())[cam_layers(backbone)[0]]
    was_training = net.training
    net.eval()
    try:
        with torch.enable_grad():
            inputs = images.detach().clone().requires_grad_(True)
            attribution = LayerGradCam(ClassContrast(net), layer).attribute(
                inputs, target=class_idx, relu_attributions=True
            )
    finally:
        net.train(was_training)
        net.zero_grad(set_to_none=True)
    # the layer map placed as slice_cams places it, so the check compares the Grad-CAM computations alone
    centres = map_cell_centres(net, cam_layers(backbone)[0], tuple(images.shape[1:]))
    return normalize_heatmaps(cell_centred_upsampler(centres)(tuple(images.shape[2:]))(attribution.detach()))


def heatmap_peak(heatmap: np.ndarray | torch.Tensor) -> tuple[int, int] | None:
    """``(i, j)`` of the maximum of a 2-D map, or None for an all-zero map (no evidence, no peak)."""
    arr = np.asarray(heatmap, dtype=np.float64).reshape(np.shape(heatmap)[-2:])
    if not np.isfinite(arr).all() or float(arr.max()) <= 0.0:
        return None
    i, j = np.unravel_index(int(np.argmax(arr)), arr.shape)
    return int(i), int(j)


def _display(slice_2d: np.ndarray) -> np.ndarray:
    # a RAS (X, Y) slice as radiologists view it: patient's right on the left, anterior at the top
    return np.asarray(slice_2d)[::-1, ::-1].T


def save_petct_cam_png(
    path: str | os.PathLike,
    ct: np.ndarray,
    pet: np.ndarray,
    heatmaps: dict[str, np.ndarray],
    lesion: np.ndarray | None = None,
    title: str = "",
    pixdim: Sequence[float] = (1.0, 1.0),
) -> Path:
    """CT and PET of one axial slice side by side, each heatmap of ``heatmaps`` drawn over both.

    Args:
        path: the PNG (written atomically).
        ct: ``(X, Y)`` CT slice in RAS order (any scale; shown from its own min to max).
        pet: ``(X, Y)`` PET slice on the same grid.
        heatmaps: ``{"CAM": map, "Grad-CAM": map}``, each ``(X, Y)`` in [0, 1]: one row of panels per map.
        lesion: optional ``(X, Y)`` lesion mask, outlined in every panel.
        title: figure title.
        pixdim: pixel size (mm) along X and Y, for the aspect ratio.

    Returns:
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(1, len(heatmaps))
    fig, axes = plt.subplots(rows, 2, figsize=(7.2, 3.6 * rows + 0.4), squeeze=False)
    aspect = float(pixdim[1]) / float(pixdim[0])
    names = list(heatmaps) or [""]
    for r, name in enumerate(names):
        for c, (base, label) in enumerate(((ct, "CT"), (pet, "PET SUV"))):
            ax = axes[r][c]
            ax.imshow(
                _display(base), cmap="gray" if c == 0 else "gray_r", aspect=aspect, interpolation="nearest"
            )
            if name:
                ax.imshow(_display(heatmaps[name]), cmap="jet", alpha=0.4, vmin=0.0, vmax=1.0, aspect=aspect)
                peak = heatmap_peak(heatmaps[name])
                if peak is not None:
                    shape = np.shape(heatmaps[name])
                    ax.plot(shape[0] - 1 - peak[0], shape[1] - 1 - peak[1], "w+", markersize=10, mew=2)
            if lesion is not None and np.any(lesion):
                ax.contour(_display(lesion.astype(np.float32)), levels=[0.5], colors="lime", linewidths=1.0)
            ax.set_title(f"{label} + {name}" if name else label, fontsize=9)
            ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return path
