"""Where the cells of a class activation map lie in the input, and an upsampler that puts them there.

MONAI's ``CAM`` / ``GradCAM`` upsample a layer's map with ``align_corners=False`` interpolation, and captum's
``LayerAttribution.interpolate`` does the same: cell ``j`` of a map of stride ``s`` is drawn at input
``s * j + (s - 1) / 2``. That holds for networks that pool by 2 (the FP-reduction CNNs) but not for those
that downsample with "same"-padded strided convolutions (ResNets: cell ``j`` centred on ``s * j``, half a
cell off) or mix the two (the Res-SE Net). :func:`map_cell_centres` measures the centres on the network
itself; :func:`cell_centred_upsampler` draws the map there.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn

from lungcad_transforms.visualize.gradcam import unwrap_network

__all__ = ["cell_centred_upsampler", "map_cell_centres"]

_AVERAGE_POOL = {nn.MaxPool1d: nn.AvgPool1d, nn.MaxPool2d: nn.AvgPool2d, nn.MaxPool3d: nn.AvgPool3d}

_CELL_CENTRES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def map_cell_centres(network: nn.Module, layer: str, image_shape: Sequence[int]) -> np.ndarray:
    """Where cell ``j`` of ``layer``'s map is centred in the input: ``offset + stride * j`` per axis.

    A max-pool of 2 centres its output ``j`` on input ``2 j + 0.5``, a "same"-padded stride-2 convolution on
    ``2 j``; MONAI's CAM upsampler (and captum's) assumes ``stride * j + (stride - 1) / 2`` whatever the
    layers. The centre is measured on a geometric twin of the network: every convolution averaging its
    inputs, linear (squeeze-and-excitation) gates held constant, biases zero, normalisation the identity,
    max-pools turned into average pools of the same window, so that what remains is the layers' geometry;
    the centroid of the input gradient of the central cell, for an input of ones, is the cell's centre.
    Written here because neither MONAI nor captum places map cells by the network's own geometry.

    Args:
        network: the classifier (not changed: a copy is probed).
        layer: the target layer's name.
        image_shape: ``(C, *spatial)`` of the network's input (2-D or 3-D).

    Returns:
        ``(2, n_spatial)`` array: row 0 the input coordinate of cell 0 along each axis, row 1 the stride.

    Examples:
        >>> net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=2, padding=1), nn.MaxPool2d(2))
        >>> map_cell_centres(net, "1", (1, 32, 32)).round(2).tolist()  # cell j at input 4 j + 1
        [[1.0, 1.0], [4.0, 4.0]]
    """
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
                average = _AVERAGE_POOL.get(type(child))
                if average is not None:  # a max-pool's window, each position as likely
                    setattr(
                        module, name, average(child.kernel_size, child.stride, child.padding, child.ceil_mode)
                    )
    grabbed: list[torch.Tensor] = []
    hook = dict(twin.named_modules())[layer].register_forward_hook(lambda _m, _i, out: grabbed.append(out))
    try:
        # three times the input's size, so that the central cell's receptive field is not cut by the border
        # (a cut one pulls the centroid towards the middle of the image); the centres do not depend on it.
        # A network built for one input size (a linear head on the flattened map) is probed at that size.
        for scale in (3, 1):
            probe = tuple(scale * int(n) for n in image_shape[1:])
            x = torch.ones((1, int(image_shape[0]), *probe), requires_grad=True)
            grabbed.clear()
            try:
                with torch.enable_grad():
                    twin(x)
            except (RuntimeError, ValueError):
                if scale == 1:
                    raise
                continue
            break
        cells = grabbed[-1]  # a module called more than once: its last output, as MONAI's CAM hooks keep
        centre = tuple(int(n) // 2 for n in cells.shape[2:])
        cells[(0, slice(None), *centre)].sum().backward()
        weight = x.grad.detach().abs().sum(dim=(0, 1)).double()
    finally:
        hook.remove()
    n_spatial = len(image_shape) - 1
    stride = np.array([probe[a] / int(cells.shape[2 + a]) for a in range(n_spatial)])
    grid = np.indices(tuple(weight.shape), dtype=np.float64)
    total = float(weight.sum())
    if total <= 0.0:  # no gradient reached the input: keep the upsamplers' convention
        known[key] = np.stack([(stride - 1.0) / 2.0, stride])
    else:
        centroid = np.array([float((grid[a] * weight.numpy()).sum()) / total for a in range(n_spatial)])
        known[key] = np.stack([centroid - stride * np.asarray(centre, dtype=np.float64), stride])
    return known[key].copy()


def cell_centred_upsampler(centres: np.ndarray):
    """MONAI-style upsampler (``upsampler(spatial_size)(maps)``) putting map cell ``j`` at ``offset + stride * j``.

    Linear between cell centres (bilinear, trilinear), the border cells' values held beyond them.

    Args:
        centres: :func:`map_cell_centres` of the network and layer the maps come from.
    """
    import torch.nn.functional as F

    offset, stride = (np.asarray(v, dtype=np.float64) for v in centres)

    def upsampler(spatial_size: Sequence[int]):
        def upsample(maps: torch.Tensor) -> torch.Tensor:
            axes = []
            for a, (cells, size) in enumerate(zip(maps.shape[2:], spatial_size, strict=True)):
                u = (torch.arange(int(size), dtype=torch.float64) - offset[a]) / stride[a]  # in cells
                axes.append((2.0 * u / max(int(cells) - 1, 1) - 1.0).clamp(-1.0, 1.0))
            # grid_sample wants the last coordinate first (x, y[, z])
            grid = torch.stack(torch.meshgrid(*axes, indexing="ij")[::-1], dim=-1)
            grid = grid[None].expand(maps.shape[0], *grid.shape).to(maps)
            return F.grid_sample(maps, grid, mode="bilinear", align_corners=True)

        return upsample

    return upsampler
