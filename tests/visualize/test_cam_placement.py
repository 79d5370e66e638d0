"""Map cell centres measured on the network's geometry, and the upsampler that draws maps there."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lungcad_transforms.networks.nets.cam_classifier import build_cam_classifier
from lungcad_transforms.visualize.cam_placement import cell_centred_upsampler, map_cell_centres


@pytest.mark.parametrize(
    "layers, offset",
    [
        ([torch.nn.Conv2d(1, 1, 3, stride=2, padding=1), torch.nn.Conv2d(1, 1, 3, stride=2, padding=1)], 0.0),
        (
            [torch.nn.MaxPool2d(2), torch.nn.Conv2d(1, 1, 3, stride=2, padding=1)],
            0.5,
        ),  # the Res-SE Net's stem
        ([torch.nn.AvgPool2d(2), torch.nn.AvgPool2d(2)], 1.5),  # the upsamplers' convention holds here only
    ],
)
def test_map_cells_are_placed_where_the_layers_centre_them(layers, offset):
    net = torch.nn.Sequential(*layers)
    centres = map_cell_centres(net, str(len(layers) - 1), (1, 32, 32))
    np.testing.assert_allclose(centres, [[offset, offset], [4.0, 4.0]], atol=1e-6)
    cells = torch.zeros(1, 1, 8, 8)
    cells[0, 0, 3, 5] = 1.0
    upsampled = cell_centred_upsampler(centres)((32, 32))(cells)[0, 0]
    peak = np.unravel_index(int(upsampled.argmax()), (32, 32))
    assert abs(peak[0] - (offset + 12)) <= 0.5 and abs(peak[1] - (offset + 20)) <= 0.5


def test_res_se_net_map_cells_are_centred_where_its_pooling_and_strides_put_them():
    from lungcad_transforms.visualize.slice_cam import map_cell_centres

    # the default: the stem's max-pool only, cell j on 2 j + 0.5 (where MONAI's upsampler draws it too)
    net = build_cam_classifier("ressenet", in_channels=3)
    np.testing.assert_allclose(
        map_cell_centres(net, "features", (3, 96, 96)), [[0.5, 0.5], [2.0, 2.0]], atol=0.01
    )
    # a strided stage after the pool: cell j on 4 j + 0.5, one pixel from MONAI's 4 j + 1.5
    strided = build_cam_classifier("ressenet", in_channels=3, strides=(1, 2, 1))
    np.testing.assert_allclose(
        map_cell_centres(strided, "features", (3, 96, 96)), [[0.5, 0.5], [4.0, 4.0]], atol=0.01
    )


def test_resnet_cells_are_centred_on_the_stride_multiples_and_3d_maps_are_placed_too():
    # "same"-padded strided convolutions: cell j on 16 j, where MONAI's upsampler would draw it at 16 j + 7.5
    net = build_cam_classifier("resnet34", in_channels=2)
    np.testing.assert_allclose(map_cell_centres(net, "layer4", (2, 64, 64))[0], [0.0, 0.0], atol=0.05)
    net3d = torch.nn.Sequential(torch.nn.Conv3d(1, 1, 3, stride=2, padding=1), torch.nn.MaxPool3d(2))
    centres = map_cell_centres(net3d, "1", (1, 16, 16, 16))
    np.testing.assert_allclose(centres, [[1.0, 1.0, 1.0], [4.0, 4.0, 4.0]], atol=1e-6)
    cells = torch.zeros(1, 1, 4, 4, 4)
    cells[0, 0, 1, 2, 3] = 1.0
    upsampled = cell_centred_upsampler(centres)((16, 16, 16))(cells)
    assert np.unravel_index(int(upsampled.argmax()), (16, 16, 16)) == (5, 9, 13)


def test_the_network_itself_is_not_changed_by_the_probe():
    net = build_cam_classifier("ressenet", in_channels=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    map_cell_centres(net, "features", (3, 32, 32))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
