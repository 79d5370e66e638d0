"""Every bundle's train.json (bundles landing later included): the checkpoints the Model Zoo expects, resuming
from the final one, and MLflow tracking of it. Config-level checks; the runs are in
tests/apps/zoo/test_training_checkpoints.py and each bundle's own tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


BUNDLES = sorted(
    p.name for p in (REPO_ROOT / "bundles").iterdir() if (p / "configs" / "train.json").is_file()
)


def _handler(handlers: list, target: str, **where) -> dict:
    return next(
        h for h in handlers
        if isinstance(h, dict) and h["_target_"] == target and all(h.get(k) == v for k, v in where.items())
    )  # fmt: skip


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_configs_save_final_and_key_metric_checkpoints_and_resume_from_the_final(bundle: str):
    """Every bundle (bundles landing later included): a final checkpoint of everything training needs,
    ``--resume`` loading that same file into the same objects, and the key-metric weights where it validates."""
    from monai.bundle import ConfigParser

    train = json.loads((REPO_ROOT / "bundles" / bundle / "configs" / "train.json").read_text())
    parser = ConfigParser(train)
    handlers = train["train"]["handlers"]
    saver = _handler(handlers, "CheckpointSaver", save_final=True)
    index = handlers.index(saver)
    final = parser.get_parsed_content(f"train#handlers#{index}#final_filename")
    assert final.endswith(".pt") and "trainer" in saver["save_dict"]
    assert any("optimizer" in k for k in saver["save_dict"])  # weights, optimizer(s) and progress: resumable
    loader = _handler(handlers, "CheckpointLoader")
    assert loader["load_dict"] == saver["save_dict"]  # --resume restores what the final checkpoint holds
    assert Path(parser.get_parsed_content("resume_ckpt")).name == final
    assert parser.get_parsed_content("resume") is False  # --resume true turns the CheckpointLoader on
    index = handlers.index(loader)
    for typed, resumes in (("false", False), ("False", False), ("true", True), ("True", True)):
        # as `monai.bundle run ... --resume <typed>` hands it over: python-fire keeps "false" as a string
        parser = ConfigParser(train)
        parser["resume"] = typed if typed.islower() else typed == "True"
        assert parser.get_parsed_content(f"train#handlers#{index}#_disabled_") is (not resumes), typed
    if "validate" in train:
        assert final.endswith("_final.pt")  # zoo naming beside the key-metric file
        key = _handler(train["validate"]["handlers"], "CheckpointSaver", save_key_metric=True)
        index = train["validate"]["handlers"].index(key)
        best = parser.get_parsed_content(f"validate#handlers#{index}#key_metric_filename")
        assert best == final.replace("_final.pt", ".pt")  # model.pt (per mode: model_<mode>.pt)
        assert any(isinstance(h, dict) and h["_target_"].endswith("FinalValidation") for h in handlers)


@pytest.mark.parametrize("bundle", BUNDLES)
def test_train_configs_log_the_final_checkpoint_to_mlflow_when_tracked(bundle: str):
    """`--tracking mlflow` (MONAI's bundle tracking, which sets ``save_execute_config`` to the executed config's
    path) turns on the bundle's own MLFlowHandler; it uploads the final checkpoint as an artefact."""
    from monai.bundle import ConfigParser

    train = json.loads((REPO_ROOT / "bundles" / bundle / "configs" / "train.json").read_text())
    parser = ConfigParser(train)
    handlers = train["train"]["handlers"]
    mlflow_handler = _handler(handlers, "MLFlowHandler")
    saver = _handler(handlers, "CheckpointSaver", save_final=True)
    index, saver_index = handlers.index(mlflow_handler), handlers.index(saver)
    final = parser.get_parsed_content(f"train#handlers#{saver_index}#final_filename")
    artifacts = [Path(a).name for a in parser.get_parsed_content(f"train#handlers#{index}#artifacts")]
    assert final in artifacts
    assert parser.get_parsed_content("tracking_uri").startswith("sqlite:")
    assert parser.get_parsed_content(f"train#handlers#{index}#_disabled_") is True  # untracked by default
