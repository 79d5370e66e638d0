"""MONAI Model Zoo readiness: the zoo's bundle checks offline, self-contained export, bundle zips."""

from __future__ import annotations

from lungcad_transforms.utils.lazy import lazy_exports

_SUBPACKAGES = ()
_NAMES = {
    "MODEL_INFO": "lungcad_transforms.apps.zoo.archive",
    "write_bundle_zip": "lungcad_transforms.apps.zoo.archive",
    "update_model_info": "lungcad_transforms.apps.zoo.archive",
    "check_bundle_zip": "lungcad_transforms.apps.zoo.archive",
    "import_bundle": "lungcad_transforms.apps.zoo.archive",
    "NECESSARY_FILES": "lungcad_transforms.apps.zoo.checks",
    "PREFERRED_FILES": "lungcad_transforms.apps.zoo.checks",
    "WORKFLOW_KEYS": "lungcad_transforms.apps.zoo.checks",
    "SCHEMA_FILE": "lungcad_transforms.apps.zoo.checks",
    "check_large_files": "lungcad_transforms.apps.zoo.checks",
    "check_files": "lungcad_transforms.apps.zoo.checks",
    "check_version": "lungcad_transforms.apps.zoo.checks",
    "check_metadata": "lungcad_transforms.apps.zoo.checks",
    "network_id": "lungcad_transforms.apps.zoo.checks",
    "network_variants": "lungcad_transforms.apps.zoo.checks",
    "check_network": "lungcad_transforms.apps.zoo.checks",
    "fake_input_shape": "lungcad_transforms.apps.zoo.checks",
    "check_torchscript": "lungcad_transforms.apps.zoo.checks",
    "register": "lungcad_transforms.apps.zoo.cli",
    "DISALLOWED_PRE": "lungcad_transforms.apps.zoo.deploy",
    "DISALLOWED_POST": "lungcad_transforms.apps.zoo.deploy",
    "sdk_volume": "lungcad_transforms.apps.zoo.deploy",
    "sdk_image_array": "lungcad_transforms.apps.zoo.deploy",
    "BundleInferenceHarness": "lungcad_transforms.apps.zoo.deploy",
    "WEIGHT_SUFFIXES": "lungcad_transforms.apps.zoo.export",
    "resolve_bundle": "lungcad_transforms.apps.zoo.export",
    "file_sha256": "lungcad_transforms.apps.zoo.export",
    "large_files_text": "lungcad_transforms.apps.zoo.export",
    "export_bundle": "lungcad_transforms.apps.zoo.export",
    "PACKAGE": "lungcad_transforms.apps.zoo.imports",
    "VENDORED": "lungcad_transforms.apps.zoo.imports",
    "references_package": "lungcad_transforms.apps.zoo.imports",
    "vendor_references": "lungcad_transforms.apps.zoo.imports",
    "module_file": "lungcad_transforms.apps.zoo.imports",
    "needed_modules": "lungcad_transforms.apps.zoo.imports",
    "TrainerState": "lungcad_transforms.apps.zoo.training",
    "FinalValidation": "lungcad_transforms.apps.zoo.training",
}
__all__ = sorted(_NAMES)
__getattr__, __dir__ = lazy_exports(__name__, _NAMES, _SUBPACKAGES)
