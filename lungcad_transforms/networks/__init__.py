"""Networks of the lungcad bundles; the classes live in ``networks.nets``, as in MONAI."""

from __future__ import annotations

from lungcad_transforms.networks.nets import (
    MGICNN,
    GradualIntegrationStream,
    Small3DCNN,
    TwoViewContrastiveLoss,
    UNetSimCLR,
    encoder_parameter_names,
    load_pretrained_encoder,
    prepare_two_view_batch,
)
