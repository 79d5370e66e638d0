"""The MONAI Model Zoo's acceptance checks of a bundle, offline, through the public ``monai.bundle`` API.

The zoo's CI (``ci/verify_bundle.py`` in Project-MONAI/model-zoo) checks the necessary and preferred files,
that ``version`` is in ``changelog``, the metadata against the schema ``metadata.json`` names
(``verify_metadata``), the network's output against ``network_data_format`` (``verify_net_in_out``), and the
export to TorchScript (``ckpt_export``) and its ``torch.jit.load``. The schema URL cannot be reached here,
so the project ships a schema written from MONAI's bundle specification (``bundle_metadata_schema.json``)
and ``verify_metadata`` is pointed at a local copy of it. Beyond the zoo, the TorchScript module's output is
compared with the eager network's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from lungcad_transforms.errors import InputError

__all__ = [
    "NECESSARY_FILES",
    "PREFERRED_FILES",
    "WORKFLOW_KEYS",
    "SCHEMA_FILE",
    "check_large_files",
    "check_files",
    "check_version",
    "check_metadata",
    "network_id",
    "network_variants",
    "check_network",
    "fake_input_shape",
    "check_torchscript",
]

# the zoo's necessary files, then what this project's bundles all carry (DESIGN.md "Layout")
NECESSARY_FILES = ("configs/metadata.json", "LICENSE")
PREFERRED_FILES = ("configs/inference.json", "docs/README.md", "configs/logging.conf", "configs/train.json")
# a config holding one of these keys is a workflow of its own (train, evaluate, pretrain ...), not a
# network overlay that can be merged onto inference
WORKFLOW_KEYS = ("run", "initialize", "training", "inferring", "evaluating", "trainer")
SCHEMA_FILE = Path(__file__).with_name("bundle_metadata_schema.json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot be read as JSON ({err})") from err


def _raw_large_files(manifest: Path) -> list[Any]:
    import yaml  # JSON is YAML too

    content = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    return list(content.get("large_files") or []) if isinstance(content, dict) else []


def check_large_files(bundle: str | os.PathLike, weights: bool = False) -> list[dict[str, str]]:
    """Raise unless the bundle's ``large_files.yml`` is in the Model Zoo's form and true to the files.

    Every entry has the four keys the zoo reads (``path``, ``url``, ``hash_val``, ``hash_type``); a file it
    lists that is in the bundle has that hash; one that is not has an ``http(s)`` ``url`` to fetch it from.
    With ``weights`` (a bundle to publish, as ``lungcad export-bundle`` writes it) the list must exist and
    name every weight file under ``models/``.

    Returns:
        the entries (as :func:`~lungcad_transforms.utils.checkpoint.read_large_files` reads them).

    Raises:
        InputError: naming the list (or the weight file) and the entry that is wrong.
    """
    from monai.apps.utils import check_hash

    from lungcad_transforms.apps.zoo.export import WEIGHT_SUFFIXES
    from lungcad_transforms.utils.checkpoint import LARGE_FILES_NAMES, read_large_files

    bundle = Path(bundle)
    manifest = next((bundle / n for n in LARGE_FILES_NAMES if (bundle / n).is_file()), None)
    entries = read_large_files(bundle)
    if manifest is None:
        if weights:
            raise InputError(bundle / LARGE_FILES_NAMES[0], "is missing: it must list the bundle's weights")
        return entries
    for i, raw in enumerate(_raw_large_files(manifest)):
        missing = [
            k for k in ("path", "url", "hash_val", "hash_type") if not isinstance(raw, dict) or k not in raw
        ]
        if missing:
            raise InputError(manifest, f"entry {i} lacks {missing} (the Model Zoo reads all four keys)")
    for entry in entries:
        target = bundle / entry["path"]
        if target.is_file():
            if not check_hash(str(target), entry["hash_val"], hash_type=entry["hash_type"]):
                raise InputError(target, f"{entry['hash_type']} differs from the {manifest.name} entry")
        elif not entry["url"].startswith(("https://", "http://")):
            raise InputError(
                manifest,
                f"{entry['path']} is neither in the bundle nor has a url to fetch it from (http or https)",
            )
    if weights:
        listed = {(bundle / e["path"]).resolve() for e in entries}
        models = bundle / "models"
        for path in sorted(models.rglob("*")) if models.is_dir() else []:
            if path.is_file() and path.suffix in WEIGHT_SUFFIXES and path.resolve() not in listed:
                raise InputError(path, f"is a weight file that {manifest.name} does not list")
    return entries


def check_files(bundle: str | os.PathLike, weights: bool = False) -> None:
    """Raise unless ``bundle`` holds the zoo's necessary files, this project's preferred ones and (with
    ``weights``) ``models/model.pt``, and its ``large_files.yml`` passes :func:`check_large_files` (with
    ``weights``: it must exist and list every weight file).

    Raises:
        InputError: naming the first missing file or the malformed entry.
    """
    bundle = Path(bundle)
    for rel in (*NECESSARY_FILES, *PREFERRED_FILES, *(("models/model.pt",) if weights else ())):
        if not (bundle / rel).is_file():
            raise InputError(bundle / rel, "is missing: the Model Zoo needs it in every bundle")
    check_large_files(bundle, weights=weights)


def check_version(bundle: str | os.PathLike) -> str:
    """The bundle's ``version``, after checking that ``changelog`` has an entry for it.

    Raises:
        InputError: no ``version``, no ``changelog``, or the version is not among the changelog's entries.
    """
    meta_file = Path(bundle) / "configs" / "metadata.json"
    meta = _read_json(meta_file)
    version = meta.get("version")
    if not version or not isinstance(meta.get("changelog"), dict) or version not in meta["changelog"]:
        raise InputError(meta_file, f"version {version!r} has no entry in 'changelog'")
    return str(version)


def check_metadata(bundle: str | os.PathLike, workdir: str | os.PathLike) -> None:
    """Validate ``configs/metadata.json`` with ``monai.bundle.verify_metadata`` against the shipped schema.

    The schema is copied to ``workdir`` under the name ``verify_metadata`` downloads to, with its hash, so
    MONAI finds it there and does not try the network.

    Raises:
        ValueError: from MONAI, naming the failing field.
    """
    from monai.bundle import verify_metadata

    from lungcad_transforms.apps.zoo.export import file_sha256

    schema = Path(workdir) / "schema.json"
    schema.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SCHEMA_FILE, schema)
    verify_metadata(
        meta_file=str(Path(bundle) / "configs" / "metadata.json"),
        filepath=str(schema),
        hash_val=file_sha256(schema),
        hash_type="sha256",
    )


def network_id(config: dict[str, Any]) -> str:
    """The config id of the network a bundle infers with: ``network_def``, as the zoo expects, or else the
    first ``*_def`` component of the config (``generator_def`` of a GAN bundle).

    Examples:
        >>> network_id({"generator_def": {"_target_": "UNet"}, "discriminator_def": {"_target_": "X"}})
        'generator_def'
    """
    if "network_def" in config:
        return "network_def"
    for key, value in config.items():
        if key.endswith("_def") and isinstance(value, dict) and "_target_" in value:
            return key
    raise KeyError("no network_def (nor another *_def component) in the config")


def network_variants(bundle: str | os.PathLike) -> list[tuple[str, list[str]]]:
    """Every network a bundle's configs can select: ``(net_id, config files)`` for ``train.json`` +
    ``inference.json``, and the same with each network overlay (a config without workflow keys that
    redefines the network, e.g. ``configs/small3dcnn.json``) added.

    Examples:
        >>> [Path(f).name for _, files in network_variants("bundles/lung_nodule_ct_fp_reduction") for f in files]
        ... # doctest: +SKIP
        ['train.json', 'inference.json', 'train.json', 'inference.json', 'small3dcnn.json']
    """
    configs = Path(bundle) / "configs"
    base = [str(configs / name) for name in ("train.json", "inference.json") if (configs / name).is_file()]
    merged: dict[str, Any] = {}
    for name in base:
        merged.update(_read_json(Path(name)))
    net_id = network_id(merged)
    variants = [(net_id, base)]
    for path in sorted(configs.glob("*.json")):
        if path.name in ("metadata.json", "train.json", "inference.json"):
            continue
        config = _read_json(path)
        if net_id in config and not any(key in config for key in WORKFLOW_KEYS):
            variants.append((net_id, [*base, str(path)]))
    return variants


def check_network(bundle: str | os.PathLike, net_id: str, config_files: list[str]) -> None:
    """``monai.bundle.verify_net_in_out``: the network's output matches ``network_data_format``.

    Raises:
        ValueError: from MONAI, when the output shape or dtype differs.
    """
    from monai.bundle import verify_net_in_out

    verify_net_in_out(
        net_id=net_id,
        meta_file=str(Path(bundle) / "configs" / "metadata.json"),
        config_file=config_files,
        device="cpu",
    )


def fake_input_shape(meta: dict[str, Any], n: int = 4) -> list[int]:
    """``[1, C, *spatial]`` of the network's first input, a symbolic size (``8*n``, ``2**p``, ``*``) taken
    with ``n`` (or ``p``) ``= n``, ``*`` as 1.

    Examples:
        >>> fake_input_shape({"network_data_format": {"inputs": {"image": {"num_channels": 1,
        ...     "spatial_shape": ["8*n", 16, "2**p"]}}}})
        [1, 1, 32, 16, 16]
    """
    spec = next(iter(meta["network_data_format"]["inputs"].values()))
    shape = [1, int(spec["num_channels"])]
    for size in spec["spatial_shape"]:
        if isinstance(size, int):
            shape.append(size)
        elif size == "*":
            shape.append(1)
        elif match := re.fullmatch(r"(\d+)\*n", str(size)):
            shape.append(int(match.group(1)) * n)
        elif match := re.fullmatch(r"(\d+)\*\*p", str(size)):
            shape.append(int(match.group(1)) ** n)
        else:
            shape.append(int(size))
    return shape


def check_torchscript(
    bundle: str | os.PathLike, net_id: str, config_files: list[str], workdir: str | os.PathLike
) -> float:
    """Export random weights of network ``net_id`` with ``monai.bundle.ckpt_export`` to
    ``<workdir>/models/model.ts``, load it with ``torch.jit.load`` and compare it with the eager network.

    Returns:
        the largest absolute difference between the two outputs on one random input.
    """
    import torch
    from monai.bundle import ConfigParser, ckpt_export

    bundle, workdir = Path(bundle), Path(workdir)
    meta_file = str(bundle / "configs" / "metadata.json")
    parser = ConfigParser()
    parser.read_config(config_files)
    parser.read_meta(meta_file)
    torch.manual_seed(0)
    net = parser.get_parsed_content(net_id).to("cpu").eval()
    (workdir / "models").mkdir(parents=True, exist_ok=True)
    ckpt, ts_file = workdir / "models" / "model.pt", workdir / "models" / "model.ts"
    torch.save(net.state_dict(), ckpt)
    ckpt_export(
        net_id=net_id,
        filepath=str(ts_file),
        ckpt_file=str(ckpt),
        meta_file=meta_file,
        config_file=config_files,
        input_shape=fake_input_shape(_read_json(Path(meta_file))),
    )
    scripted = torch.jit.load(str(ts_file), map_location="cpu").eval()
    x = torch.rand(*fake_input_shape(_read_json(Path(meta_file))))
    with torch.no_grad():
        eager, traced = net(x), scripted(x)
    if isinstance(eager, (tuple, list)):
        eager, traced = eager[0], traced[0]
    return float((eager.float() - traced.float()).abs().max())
