"""Networks the lungcad bundles use that MONAI does not ship in the needed form."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "BACKBONES": "lungcad_transforms.networks.nets.cam_classifier",
    "build_cam_classifier": "lungcad_transforms.networks.nets.cam_classifier",
    "cam_layers": "lungcad_transforms.networks.nets.cam_classifier",
    "backbone_stages": "lungcad_transforms.networks.nets.cam_classifier",
    "CTGANGenerator": "lungcad_transforms.networks.nets.ctgan",
    "IntermediateFusionResNet": "lungcad_transforms.networks.nets.fusion_resnet",
    "GradualIntegrationStream": "lungcad_transforms.networks.nets.mgicnn",
    "MGICNN": "lungcad_transforms.networks.nets.mgicnn",
    "load_pretrained_weights": "lungcad_transforms.networks.nets.pretrained",
    "freeze_stages": "lungcad_transforms.networks.nets.pretrained",
    "build_transfer_classifier": "lungcad_transforms.networks.nets.pretrained",
    "ResSEBlock": "lungcad_transforms.networks.nets.res_se_net",
    "ResSENet": "lungcad_transforms.networks.nets.res_se_net",
    "Small3DCNN": "lungcad_transforms.networks.nets.small3dcnn",
    "UNetSimCLR": "lungcad_transforms.networks.nets.unet_simclr",
    "TwoViewContrastiveLoss": "lungcad_transforms.networks.nets.unet_simclr",
    "prepare_two_view_batch": "lungcad_transforms.networks.nets.unet_simclr",
    "encoder_parameter_names": "lungcad_transforms.networks.nets.unet_simclr",
    "load_pretrained_encoder": "lungcad_transforms.networks.nets.unet_simclr",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
