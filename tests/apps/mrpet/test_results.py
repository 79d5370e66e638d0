"""What an MR/PET evaluation writes (MRPETResultsWriter): tables, registrations, Grad-CAM overlays and,
with labels, metrics and plots; without labels the label column stays empty and no metrics are made."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lungcad_transforms.apps.mrpet.phantom_pairs import ensure_mrpet_dataset
from lungcad_transforms.apps.mrpet.results import MRPETResultsWriter
from lungcad_transforms.apps.mrpet.slices import MRPETSliceDataset
from lungcad_transforms.apps.mrpet.volumes import MRPETVolumed, mrpet_datalist
from lungcad_transforms.data.csv_table import read_csv_rows

pytest.importorskip("itk")


@pytest.fixture(scope="module")
def slices(tmp_path_factory) -> MRPETSliceDataset:
    root = ensure_mrpet_dataset(tmp_path_factory.mktemp("mrpet") / "d", n_train=2, n_val=0, n_test=0, n_misaligned=0,
                                mr_shape=(48, 48, 8), mr_spacing=(6.0, 6.0, 8.0), pet_shape=(24, 24, 8), seed=9)  # fmt: skip
    entries = mrpet_datalist(f"{root}/datalist.json", "training")  # a normal patient, then one with a tumour
    return MRPETSliceDataset(entries, MRPETVolumed("mr_pet", spacing=(6.0, 6.0), size=(48, 48)))


def _net() -> torch.nn.Module:
    from monai.networks.nets import ResNet

    torch.manual_seed(0)
    return ResNet("basic", [1, 1, 1, 1], [4, 8, 8, 8], spatial_dims=2, n_input_channels=2, num_classes=2)


def test_writer_writes_tables_registrations_overlays_and_metrics(slices, tmp_path):
    probs = np.linspace(0.05, 0.95, len(slices))  # the tumour patient (second) scores higher
    metrics = MRPETResultsWriter(slices, tmp_path, _net(), gradcam_patients=1, mode="mr_pet").write(probs)
    rows = [r for _, r in read_csv_rows(tmp_path / "slices.csv")]
    assert rows[0] == ["patient", "slice", "probability", "label"] and len(rows) == 1 + 16
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(probs)
    patients = [r for _, r in read_csv_rows(tmp_path / "patients.csv")]
    assert [r[0] for r in patients[1:]] == [p["patient"] for p in slices.patients]
    assert (
        float(patients[2][1]) == pytest.approx(probs[-1]) and patients[2][3] == "1" and patients[1][3] == "0"
    )
    assert metrics["patients"]["roc_auc"] == 1.0 and metrics["slices"]["n"] == 16
    assert json.loads((tmp_path / "metrics.json").read_text())["patients"]["confusion"] == [[1, 0], [0, 1]]
    records = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "registration").glob("*.json")}
    assert set(records) == {p["patient"] for p in slices.patients}
    assert all(r["method"] == "world" for r in records.values())  # one Frame of Reference per study
    # one overlay: the most suspicious patient only
    assert [p.stem for p in (tmp_path / "gradcam").glob("*.png")] == [patients[2][0]]
    for name in ("confusion_slices.png", "confusion_patients.png", "roc.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_without_labels_the_label_column_is_empty_and_no_metrics_are_written(slices, tmp_path):
    import copy

    unlabelled = copy.copy(slices)
    unlabelled.items = [dict(item, label=torch.tensor(-1)) for item in slices.items]
    assert MRPETResultsWriter(unlabelled, tmp_path, network=None).write([0.5] * len(slices)) == {}
    patients = [r for _, r in read_csv_rows(tmp_path / "patients.csv")]
    assert all(r[3] == "" for r in patients[1:]) and not (tmp_path / "metrics.json").exists()
    assert not (tmp_path / "gradcam").exists()


def test_gradcam_overlay_map_is_brightest_where_the_tumour_evidence_is():
    """The map of the tumour class against the other, maximum 1 at the evidence (MONAI's default normaliser
    would put 0 there), drawn where the network's strided convolution centres its cells."""
    from lungcad_transforms.apps.mrpet.results import _gradcam

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer4 = torch.nn.Conv2d(2, 2, 3, stride=2, padding=1, bias=False)
            self.fc = torch.nn.Linear(2, 2)
            with torch.no_grad():
                self.layer4.weight.zero_()
                self.layer4.weight[0, 0, 1, 1] = self.layer4.weight[1, 1, 1, 1] = 1.0
                self.fc.weight.copy_(
                    torch.tensor([[2.0, 0.0], [2.0, 1.0]])
                )  # channel 0 shared by both classes

        def forward(self, x):
            return self.fc(torch.relu(self.layer4(x)).mean(dim=(2, 3)))

    image = torch.zeros(2, 32, 32)
    image[0, 2:8, 2:8] = 3.0  # bright structure both classes weigh alike
    image[1, 20:24, 22:26] = 1.0  # the tumour, on the second channel
    net = Net().train()
    heat = _gradcam(net, image, "layer4")
    assert heat.shape == (32, 32) and float(heat.max()) == 1.0
    i, j = np.unravel_index(int(heat.argmax()), heat.shape)
    assert 20 <= i < 24 and 22 <= j < 26
    assert float(heat[2:8, 2:8].max()) < 0.05
    assert net.training  # its mode is left as it was
