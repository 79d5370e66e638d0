from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from lungcad_transforms.metrics.classification import (
    aggregate_by_patient,
    binary_classification_report,
    bootstrap_ci,
    paired_bootstrap_auc_difference,
    roc_auc,
)


def test_report_counts_and_rates():
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    probs = [0.9, 0.6, 0.2, 0.1, 0.7, 0.3, 0.4, 0.5]
    r = binary_classification_report(labels, probs)
    # predicted positive: 0.9 0.6 0.7 0.5 -> tp 3 (0.9, 0.6, 0.5), fp 1 (0.7), fn 1 (0.2), tn 3
    assert r["confusion"] == [[3, 1], [1, 3]]
    assert r["accuracy"] == pytest.approx(6 / 8)
    assert r["sensitivity"] == r["recall"] == pytest.approx(3 / 4)
    assert r["specificity"] == pytest.approx(3 / 4)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["n"] == 8 and r["n_positive"] == 4
    expected = compute_roc_auc(torch.tensor(probs), torch.tensor(labels))
    assert r["roc_auc"] == pytest.approx(float(expected))


def test_auc_matches_monai_with_ties_and_is_nan_for_one_class():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    probs = np.round(rng.random(200) * 0.5 + 0.3 * labels, 1)  # many ties
    expected = float(compute_roc_auc(torch.tensor(probs), torch.tensor(labels)))
    assert roc_auc(labels, probs) == pytest.approx(expected)
    assert np.isnan(roc_auc([1, 1], [0.2, 0.9]))
    assert np.isnan(binary_classification_report([0, 0], [0.1, 0.2])["sensitivity"])


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        binary_classification_report([0, 1], [0.5])
    with pytest.raises(ValueError, match="0 or 1"):
        binary_classification_report([0, 2], [0.5, 0.5])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc([0, 1], [0.5, float("nan")])
    with pytest.raises(ValueError, match="rule"):
        aggregate_by_patient(["a"], [0.5], [1], rule="median")
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci([0, 1], [0.1, 0.9], "f1")


def test_patient_majority_and_mean():
    ids = ["p1", "p1", "p1", "p2", "p2", "p3", "p3", "p3", "p3"]
    probs = [0.9, 0.8, 0.1, 0.2, 0.3, 0.95, 0.1, 0.2, 0.3]
    labels = [1, 1, 0, 0, 0, 1, 0, 0, 0]
    order, maj, lab = aggregate_by_patient(ids, probs, labels, rule="majority")
    assert order == ["p1", "p2", "p3"]
    np.testing.assert_allclose(maj, [2 / 3, 0.0, 0.25])
    np.testing.assert_array_equal(lab, [1, 0, 1])  # a patient with any positive slice is positive
    _, mean, _ = aggregate_by_patient(ids, probs, labels, rule="mean")
    np.testing.assert_allclose(mean, [0.6, 0.25, 0.3875])
    # p3 has one hot slice of four: negative by majority vote, the false negative the study's rule makes
    verdict = binary_classification_report(lab, maj)
    assert verdict["confusion"] == [[1, 0], [1, 1]]
    # the whole-stack rule: p3's one hot slice makes it positive, p2 (no slice >= 0.5) stays negative
    _, top, _ = aggregate_by_patient(ids, probs, labels, rule="max")
    np.testing.assert_allclose(top, [0.9, 0.3, 0.95])
    assert binary_classification_report(lab, top)["confusion"] == [[1, 0], [0, 2]]


def test_bootstrap_ci_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    probs = 0.25 * labels + 0.75 * rng.random(300)
    auc = roc_auc(labels, probs)
    low, high = bootstrap_ci(labels, probs, "roc_auc", n_resamples=300, seed=1)
    assert low < auc < high and high - low < 0.15
    assert bootstrap_ci(labels, probs, "roc_auc", n_resamples=300, seed=1) == (low, high)
    acc_low, acc_high = bootstrap_ci(labels, probs, "accuracy", n_resamples=300, seed=1)
    acc = binary_classification_report(labels, probs)["accuracy"]
    assert acc_low <= acc <= acc_high


def test_grouped_bootstrap_is_wider_for_correlated_clusters():
    # 10 patients x 20 identical slices: drawing slices pretends there are 200 independent samples
    rng = np.random.default_rng(5)
    patient_label = np.array([0, 1] * 5)
    patient_prob = np.clip(0.35 + 0.3 * patient_label + 0.25 * rng.standard_normal(10), 0, 1)
    labels = np.repeat(patient_label, 20)
    probs = np.repeat(patient_prob, 20)
    groups = np.repeat(np.arange(10), 20)
    lo_s, hi_s = bootstrap_ci(labels, probs, "accuracy", n_resamples=400, seed=0)
    lo_g, hi_g = bootstrap_ci(labels, probs, "accuracy", n_resamples=400, seed=0, groups=groups)
    assert hi_g - lo_g > 2 * (hi_s - lo_s)


def test_paired_auc_difference_detects_a_better_model():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 2, 200)
    good = np.clip(0.6 * labels + 0.4 * rng.random(200), 0, 1)
    noise = rng.random(200)
    res = paired_bootstrap_auc_difference(labels, good, noise, n_resamples=400, seed=0)
    assert res["difference"] == pytest.approx(roc_auc(labels, good) - roc_auc(labels, noise))
    assert res["ci_low"] > 0 and res["p_value"] < 0.01
    same = paired_bootstrap_auc_difference(labels, good, good, n_resamples=50, seed=0)
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
