"""Networks the lungcad bundles use that MONAI does not ship in the needed form."""

from __future__ import annotations

from lungcad_transforms.networks.nets.mgicnn import MGICNN, GradualIntegrationStream
from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN
from lungcad_transforms.networks.nets.unet_simclr import (
    TwoViewContrastiveLoss,
    UNetSimCLR,
    encoder_parameter_names,
    load_pretrained_encoder,
    prepare_two_view_batch,
)
