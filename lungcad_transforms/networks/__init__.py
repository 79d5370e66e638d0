"""Networks the lungcad bundles use that MONAI does not ship in the needed form."""

from lungcad_transforms.networks.simclr import (
    TwoViewContrastiveLoss,
    UNetSimCLR,
    load_pretrained_encoder,
    prepare_two_view_batch,
)

__all__ = ["UNetSimCLR", "TwoViewContrastiveLoss", "prepare_two_view_batch", "load_pretrained_encoder"]
