"""The demo's brief training overrides, read the way ``python -m monai.bundle run`` reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lungcad_transforms.apps.cad.bundles import SEGMENTATION_BUNDLE
from lungcad_transforms.apps.cad.training import BRIEF_TRAINING

REPO = Path(__file__).resolve().parents[3]


def _as_monai_bundle_reads_them(flags: list[str]) -> dict:
    """``--key value`` pairs as python-fire parses them and ``monai.bundle.scripts.update_kwargs`` keeps them."""
    from fire.parser import DefaultParseValue
    from monai.bundle.scripts import update_kwargs

    assert len(flags) % 2 == 0 and all(f.startswith("--") for f in flags[::2]), flags
    return update_kwargs(
        {}, **{k[2:]: DefaultParseValue(v) for k, v in zip(flags[::2], flags[1::2], strict=True)}
    )


@pytest.mark.parametrize("bundle", sorted(BRIEF_TRAINING))
def test_no_brief_training_override_is_silently_dropped(bundle):
    # monai.bundle run ignores an override whose value parses to None: such a flag would change nothing
    flags = BRIEF_TRAINING[bundle]
    assert set(_as_monai_bundle_reads_them(flags)) == {k[2:] for k in flags[::2]}


def test_brief_segmentation_training_is_on_the_phantoms_alone():
    from monai.bundle import ConfigParser

    parser = ConfigParser()
    parser.read_config(REPO / "bundles" / SEGMENTATION_BUNDLE / "configs" / "train.json")
    parser.update(_as_monai_bundle_reads_them(BRIEF_TRAINING[SEGMENTATION_BUNDLE]))
    assert parser.get_parsed_content("embedded_hybrid#backgrounds") == []  # no real-scan part to write
