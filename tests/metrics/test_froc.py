"""LUNA16 FROC / CPM: hand-computed cases for each rule of the official evaluation script, a brute-force
re-derivation on random cases, bootstrap bounds, the results writer and the ``lungcad froc`` command."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from luna16_cases import (
    ANN_COLS,
    RES_COLS,
    S0,
    S1,
    S2,
    S3,
    UNLISTED,
    far_mark,
    mark,
    nodule,
    random_case,
    write_csv,
)

from lungcad_transforms.apps.luna16.evaluation import evaluate_files
from lungcad_transforms.metrics.froc import FROC_FP_RATES, froc_score


# ------------------------------------------------------------------------------------------------
# hand-computed cases
# ------------------------------------------------------------------------------------------------
def test_perfect_system_scores_cpm_one():
    nodules = [nodule(S0, 10, 20, 30), nodule(S0, -40, 0, 5), nodule(S1, 0, 0, 0)]
    marks = [mark(n["seriesuid"], n["coordX"] + 1, n["coordY"], n["coordZ"] - 1, 0.9) for n in nodules]
    r = froc_score(nodules, marks, [S0, S1])
    np.testing.assert_array_equal(r.sensitivities, np.ones(7))
    assert r.cpm == 1.0
    assert (r.total_nodules, r.detected_nodules, r.n_false_positives, r.n_scans) == (3, 3, 0, 2)
    np.testing.assert_array_equal(r.fp_rates, FROC_FP_RATES)


def test_known_false_positives_at_known_ranks():
    # 4 scans, 4 nodules A..D; D is never hit. Marks by probability (TP = hits a nodule):
    #   0.95 TP(A)  0.9 FP  0.8 TP(B)  0.7 FP  0.6 FP  0.5 TP(C)  0.4 0.3 0.2 0.1 FP   -> 7 FPs
    # curve (FPs/4 scans, TPs/4 nodules): (0,0) (0,.25) (.25,.25) (.25,.5) (.5,.5) (.75,.5) (.75,.75)
    #   (1,.75) (1.25,.75) (1.5,.75) (1.75,.75)
    # 1/8: between (0,.25) and (.25,.25)         -> 0.25
    # 1/4: exactly on the vertical step at .25; np.interp takes its top  -> 0.5
    # 1/2: (.5,.5)                                -> 0.5
    # 1:   (1,.75)                                -> 0.75
    # 2,4,8: past the last point (1.75): last value -> 0.75
    # CPM = (0.25 + 0.5 + 0.5 + 4 * 0.75) / 7 = 4.25 / 7
    nodules = [nodule(S0, 0, 0, 0), nodule(S1, 0, 0, 0), nodule(S2, 0, 0, 0), nodule(S3, 0, 0, 0)]
    marks = [
        mark(S0, 1, 0, 0, 0.95),
        far_mark(S1, 0.9),
        mark(S1, 0, 1, 0, 0.8),
        far_mark(S2, 0.7),
        far_mark(S3, 0.6),
        mark(S2, 0, 0, 1, 0.5),
        far_mark(S0, 0.4),
        far_mark(S1, 0.3, 1),
        far_mark(S2, 0.2, 1),
        far_mark(S3, 0.1, 1),
    ]
    r = froc_score(nodules, marks, [S0, S1, S2, S3])
    np.testing.assert_allclose(r.sensitivities, [0.25, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75], atol=1e-12)
    assert r.cpm == pytest.approx(4.25 / 7, abs=1e-12)
    assert (r.total_nodules, r.detected_nodules, r.n_false_positives) == (4, 3, 7)
    np.testing.assert_allclose(r.curve_fp_rate, [0, 0, 0.25, 0.25, 0.5, 0.75, 0.75, 1, 1.25, 1.5, 1.75])
    np.testing.assert_allclose(
        r.curve_sensitivity, [0, 0.25, 0.25, 0.5, 0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.75]
    )
    assert r.curve_threshold[0] == np.inf and r.curve_threshold[1] == 0.95


def test_ties_between_a_hit_and_a_false_positive_make_a_diagonal_step():
    # 2 scans, nodules A, B. A's hit ties with a FP at 0.8; B hit at 0.5; a FP at 0.3.
    # curve: (0,0) -> threshold 0.8 adds 1 FP and 1 TP at once -> (.5,.5) -> (.5,1) -> (1,1)
    # 1/8 and 1/4 interpolate on the diagonal: 0.125, 0.25; from 1/2 on: 1.0
    # CPM = (0.125 + 0.25 + 5 * 1) / 7
    nodules = [nodule(S0, 0, 0, 0), nodule(S1, 0, 0, 0)]
    marks = [mark(S0, 0, 0, 0, 0.8), far_mark(S1, 0.8), mark(S1, 1, 1, 1, 0.5), far_mark(S0, 0.3)]
    r = froc_score(nodules, marks, [S0, S1])
    np.testing.assert_allclose(r.sensitivities, [0.125, 0.25, 1, 1, 1, 1, 1], atol=1e-12)
    assert r.cpm == pytest.approx(5.375 / 7, abs=1e-12)
    np.testing.assert_allclose(r.curve_fp_rate, [0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(r.curve_sensitivity, [0, 0.5, 1.0, 1.0])


def test_several_hits_on_one_nodule_count_once_with_the_highest_probability():
    # 1 scan, nodule A hit at 0.9 and 0.3; FPs at 0.6 and 0.5.
    # A scores 0.9 (max) -> detected before any FP: sensitivity 1 at every rate. Had it scored 0.3,
    # 1/8..1/2 would read 0; had each hit counted, sensitivity would exceed 1.
    nodules = [nodule(S0, 0, 0, 0, 10.0)]
    marks = [mark(S0, 1, 0, 0, 0.9), mark(S0, -2, 1, 0, 0.3), far_mark(S0, 0.6), far_mark(S0, 0.5, 1)]
    r = froc_score(nodules, marks, [S0])
    np.testing.assert_array_equal(r.sensitivities, np.ones(7))
    assert (r.detected_nodules, r.n_false_positives, r.n_double_hits) == (1, 2, 1)
    np.testing.assert_array_equal(r.curve_threshold, [np.inf, 0.9, 0.6, 0.5])


def test_candidate_on_two_nodules_detects_both():
    # two overlapping 10 mm nodules 4 mm apart; one mark between them hits both, no FP
    nodules = [nodule(S0, 0, 0, 0), nodule(S0, 4, 0, 0)]
    r = froc_score(nodules, [mark(S0, 2, 0, 0, 0.7)], [S0])
    assert (r.detected_nodules, r.n_false_positives, r.cpm) == (2, 0, 1.0)


def test_hits_on_excluded_findings_are_ignored():
    # 1 scan: nodule A hit at 0.7; a mark on an excluded finding at 0.9; a plain FP at 0.2.
    # ignored: curve (0,0) (0,1) (1,1) -> sensitivity 1 everywhere
    # not ignored (no excluded list): 0.9 is a FP first -> (1,0) (1,1) (2,1) -> 0 0 0 1 1 1 1
    nodules = [nodule(S0, 0, 0, 0)]
    excluded = [nodule(S0, 50, 50, 50, 6.0)]
    marks = [mark(S0, 0, 0, 1, 0.7), mark(S0, 51, 50, 50, 0.9), far_mark(S0, 0.2)]
    r = froc_score(nodules, marks, [S0], excluded=excluded)
    np.testing.assert_array_equal(r.sensitivities, np.ones(7))
    assert (r.n_false_positives, r.n_ignored_excluded) == (1, 1)
    r_all = froc_score(nodules, marks, [S0])
    np.testing.assert_array_equal(r_all.sensitivities, [0, 0, 0, 1, 1, 1, 1])
    assert r_all.n_false_positives == 2


def test_hit_on_an_included_nodule_inside_an_excluded_finding_stays_a_true_positive():
    nodules = [nodule(S0, 0, 0, 0, 6.0)]
    excluded = [nodule(S0, 1, 0, 0, 20.0)]  # a large excluded finding around the nodule
    r = froc_score(nodules, [mark(S0, 0.5, 0, 0, 0.4), far_mark(S0, 0.8)], [S0], excluded=excluded)
    assert (r.detected_nodules, r.n_ignored_excluded, r.n_false_positives) == (1, 0, 1)


def test_scans_without_nodules_add_false_positives():
    # S0: nodule hit at 0.5; S1: no nodule, FPs at 0.9 and 0.8. 2 scans:
    # curve (0,0) (.5,0) (1,0) (1,1): 1/8, 1/4, 1/2 -> 0; 1 and above -> 1; CPM 4/7
    r = froc_score(
        [nodule(S0, 0, 0, 0)], [mark(S0, 0, 0, 0, 0.5), far_mark(S1, 0.9), far_mark(S1, 0.8, 1)], [S0, S1]
    )
    np.testing.assert_array_equal(r.sensitivities, [0, 0, 0, 1, 1, 1, 1])
    assert r.cpm == pytest.approx(4 / 7)


def test_listed_scans_without_results_divide_the_false_positives_and_unlisted_ids_are_ignored():
    nodules = [nodule(S0, 0, 0, 0), nodule(UNLISTED, 0, 0, 0)]
    marks = [
        far_mark(S0, 0.9),
        mark(S0, 0, 0, 0, 0.5),
        far_mark(UNLISTED, 0.99),
        mark(UNLISTED, 0, 0, 0, 0.98),
    ]
    # one scan: the FP at 0.9 is 1 FP/scan before the hit -> 0 0 0 1 1 1 1
    one = froc_score(nodules, marks, [S0])
    np.testing.assert_array_equal(one.sensitivities, [0, 0, 0, 1, 1, 1, 1])
    # four scans (three without results): the same FP is 1/4 FP/scan -> 1/8 reads 0, 1/4 on reads 1
    four = froc_score(nodules, marks, [S0, S1, S2, S3])
    np.testing.assert_array_equal(four.sensitivities, [0, 1, 1, 1, 1, 1, 1])
    assert four.total_nodules == 1 and four.n_results_unlisted == 2 and four.n_annotations_unlisted == 1


def test_header_only_results_give_zero_sensitivity(tmp_path):
    ann = write_csv(tmp_path / "annotations.csv", ANN_COLS, [nodule(S0, 0, 0, 0), nodule(S1, 5, 5, 5)])
    res = write_csv(tmp_path / "results.csv", RES_COLS, [])
    uids = tmp_path / "seriesuids.csv"
    uids.write_text(f"{S0}\n{S1}\n")
    r = evaluate_files(ann, uids, res)
    np.testing.assert_array_equal(r.sensitivities, np.zeros(7))
    assert r.cpm == 0.0 and r.detected_nodules == 0 and r.auc is None


def test_system_detecting_nothing_scores_zero_not_nan():
    r = froc_score([nodule(S0, 0, 0, 0)], [far_mark(S0, 0.9)], [S0])
    np.testing.assert_array_equal(r.sensitivities, np.zeros(7))
    assert r.cpm == 0.0


def test_negative_diameter_means_10_mm():
    # an excluded finding with diameter -1 (as in annotations_excluded.csv) has a 5 mm radius
    excluded = [nodule(S0, 50, 0, 0, -1.0)]
    nodules = [nodule(S0, 0, 0, 0, 4.0)]
    inside = froc_score(nodules, [mark(S0, 54.9, 0, 0, 0.9), mark(S0, 0, 0, 0, 0.5)], [S0], excluded=excluded)
    assert (inside.n_ignored_excluded, inside.n_false_positives) == (1, 0)
    at_radius = froc_score(
        nodules, [mark(S0, 55.0, 0, 0, 0.9), mark(S0, 0, 0, 0, 0.5)], [S0], excluded=excluded
    )
    assert (at_radius.n_ignored_excluded, at_radius.n_false_positives) == (0, 1)
    # the rule applies to included nodules too
    r = froc_score([nodule(S0, 0, 0, 0, -1.0)], [mark(S0, 0, 4.9, 0, 0.5)], [S0])
    assert r.detected_nodules == 1


@pytest.mark.parametrize(
    "offset, hit",
    [((3.0, 0, 0), False), ((2.999, 0, 0), True), ((1.0, 2.0, 2.0), False), ((1.0, 2.0, 1.99), True)],
)
def test_hit_needs_distance_strictly_below_the_radius(offset, hit):
    # 6 mm nodule: radius 3 mm; (1, 2, 2) is exactly 3 mm away
    r = froc_score(
        [nodule(S0, 10, 20, 30, 6.0)], [mark(S0, 10 + offset[0], 20 + offset[1], 30 + offset[2], 0.8)], [S0]
    )
    assert r.detected_nodules == int(hit)
    assert r.n_false_positives == int(not hit)


def test_at_most_100_candidates_per_scan_the_most_probable():
    # 100 scans listed; S0 has 100 FPs (0.9 .. 0.801), the nodule's hit ranks 101st (0.3), 4 more FPs below.
    uids = [S0] + [f"1.2.840.{i}" for i in range(99)]
    marks = [far_mark(S0, 0.9 - i * 1e-3, i) for i in range(100)]
    marks += [mark(S0, 0, 0, 0, 0.3)] + [far_mark(S0, 0.2 - i * 1e-3, 200 + i) for i in range(4)]
    nodules = [nodule(S0, 0, 0, 0)]
    capped = froc_score(nodules, marks, uids)
    # the cut keeps marks strictly above the 101st probability (0.3): the hit is dropped
    assert (capped.n_candidates, capped.n_candidates_evaluated, capped.n_dropped_by_cap) == (105, 100, 5)
    assert capped.detected_nodules == 0 and capped.cpm == 0.0
    # without the cap the hit comes after 100 FPs = 1 FP/scan: 0 0 0 1 1 1 1
    uncapped = froc_score(nodules, marks, uids, max_candidates_per_scan=0)
    np.testing.assert_array_equal(uncapped.sensitivities, [0, 0, 0, 1, 1, 1, 1])


def test_cap_drops_every_mark_tied_with_the_101st():
    marks = [far_mark(S0, 1.0 - i * 1e-3, i) for i in range(99)] + [
        far_mark(S0, 0.05, 500),
        far_mark(S0, 0.05, 501),
    ]
    r = froc_score([nodule(S0, 0, 0, 0)], marks, [S0])
    assert (r.n_candidates, r.n_candidates_evaluated, r.n_dropped_by_cap) == (101, 99, 2)
    exactly_100 = froc_score([nodule(S0, 0, 0, 0)], marks[:100], [S0])
    assert exactly_100.n_dropped_by_cap == 0


@pytest.mark.parametrize("n_false_positives, expected_at_one_eighth", [(155, 0.5), (156, 1.0)])
def test_fp_rate_rounding_matches_the_official_script(n_false_positives, expected_at_one_eighth):
    # LUNA16-sized: 888 scans, nodule A hit first, then 111 FPs, then nodule B's hit, then the other FPs.
    # 111 FPs / 888 scans is exactly 1/8 FP/scan, where the curve steps up from 0.5 to 1.0. The script
    # computes the rate as (111 / n_fp) * n_fp / 888: for n_fp = 155 that rounds to 0.12500000000000003,
    # just right of 1/8, so np.interp reads the bottom of the step (0.5); for 156 it is exact (top, 1.0).
    # Checked against the script run with scikit-learn's roc_curve.
    uids = [f"1.2.840.{i}" for i in range(888)]
    nodules = [nodule(uids[0], 0, 0, 0), nodule(uids[1], 0, 0, 0)]
    marks = [mark(uids[0], 0, 0, 0, 0.99), mark(uids[1], 0, 0, 0, 0.5)]
    for k in range(n_false_positives):
        probability = 0.9 - k * 1e-3 if k < 111 else 0.4 - k * 1e-4
        marks.append(far_mark(uids[2 + k % 50], probability, k))
    r = froc_score(nodules, marks, uids)
    assert r.sensitivities[0] == expected_at_one_eighth
    np.testing.assert_array_equal(r.sensitivities[1:], np.ones(6))


# ------------------------------------------------------------------------------------------------
# random cases against a brute-force re-derivation
# ------------------------------------------------------------------------------------------------
def brute_force_sensitivities(nodules, excluded, marks, uids, max_per_scan=100):
    """Literal reading of the LUNA16 rules, one Python loop per rule, no numpy."""
    listed = set(uids)
    scan_marks = defaultdict(list)
    for m in marks:
        if m["seriesuid"] in listed:
            scan_marks[m["seriesuid"]].append(m)
    for uid, ms in scan_marks.items():
        if len(ms) > max_per_scan:
            cut = sorted((m["probability"] for m in ms), reverse=True)[max_per_scan]
            scan_marks[uid] = [m for m in ms if m["probability"] > cut]

    def hits(finding, m):
        diameter = finding["diameter_mm"] if finding["diameter_mm"] >= 0 else 10.0
        d2 = sum((finding[c] - m[c]) ** 2 for c in ("coordX", "coordY", "coordZ"))
        return d2 < (diameter / 2) ** 2

    positives, negatives, total = [], [], 0
    for uid in uids:
        ms = scan_marks[uid]
        used = [False] * len(ms)
        for n in (n for n in nodules if n["seriesuid"] == uid):
            total += 1
            scores = []
            for i, m in enumerate(ms):
                if hits(n, m):
                    scores.append(m["probability"])
                    used[i] = True
            if scores:
                positives.append(max(scores))
        for e in (e for e in excluded if e["seriesuid"] == uid):
            for i, m in enumerate(ms):
                used[i] = used[i] or hits(e, m)
        negatives += [m["probability"] for i, m in enumerate(ms) if not used[i]]
    n_det, n_fp, n_scans = len(positives), len(negatives), len(uids)
    points = [(0.0, 0.0)]
    for t in sorted(set(positives + negatives), reverse=True):
        fp = sum(p >= t for p in negatives)
        tp = sum(p >= t for p in positives)
        # the script's arithmetic: ROC rates scaled back to counts
        points.append(
            ((fp / n_fp) * n_fp / n_scans if n_fp else 0.0, (tp / n_det) * n_det / total if n_det else 0.0)
        )
    out = []
    for rate in FROC_FP_RATES:
        i = max(k for k, (x, _) in enumerate(points) if x <= rate)  # last point at or left of the rate
        if i == len(points) - 1:
            out.append(points[i][1])
        else:
            (x0, y0), (x1, y1) = points[i], points[i + 1]
            out.append(y0 + (y1 - y0) * (rate - x0) / (x1 - x0))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_cases_agree_with_brute_force(seed):
    nodules, excluded, marks, uids = random_case(seed)
    r = froc_score(nodules, marks, uids, excluded=excluded)
    expected = brute_force_sensitivities(nodules, excluded, marks, uids)
    np.testing.assert_allclose(r.sensitivities, expected, atol=1e-9)
    assert r.cpm == pytest.approx(np.mean(expected), abs=1e-9)


# ------------------------------------------------------------------------------------------------
# bootstrap, AUC
# ------------------------------------------------------------------------------------------------
def test_bootstrap_of_identical_scans_collapses_to_the_estimate():
    # every scan is the same (a nodule hit at 0.8, a FP at 0.9): any resample has the same curve
    uids = [S0, S1, S2, S3]
    nodules = [nodule(u, 0, 0, 0) for u in uids]
    marks = [mark(u, 0, 0, 0, 0.8) for u in uids] + [far_mark(u, 0.9) for u in uids]
    r = froc_score(nodules, marks, uids, n_bootstrap=50, seed=3)
    np.testing.assert_array_equal(r.ci_low, r.sensitivities)
    np.testing.assert_array_equal(r.ci_high, r.sensitivities)
    assert r.cpm_ci == (r.cpm, r.cpm) and r.n_bootstrap_used == 50


def test_bootstrap_bounds_contain_the_estimate_and_depend_only_on_the_seed():
    nodules, excluded, marks, uids = random_case(7)
    a = froc_score(nodules, marks, uids, excluded=excluded, n_bootstrap=300, seed=11)
    b = froc_score(nodules, marks, uids, excluded=excluded, n_bootstrap=300, seed=11)
    c = froc_score(nodules, marks, uids, excluded=excluded, n_bootstrap=300, seed=12)
    assert np.all(a.ci_low <= a.sensitivities + 1e-12) and np.all(a.sensitivities <= a.ci_high + 1e-12)
    assert a.cpm_ci[0] <= a.cpm <= a.cpm_ci[1]
    assert a.cpm_ci[0] < a.cpm_ci[1]
    np.testing.assert_array_equal(a.ci_low, b.ci_low)
    np.testing.assert_array_equal(a.band_high, b.band_high)
    assert not (np.array_equal(a.band_low, c.band_low) and np.array_equal(a.band_high, c.band_high))
    assert a.n_bootstrap_used <= 300 and a.bootstrap_mean.shape == (7,)


def test_bootstrap_bounds_are_the_official_percentile_indices_of_resampled_scans():
    # re-derive every draw by hand: scans drawn (with repeats) by default_rng(seed).integers(0, S, S),
    # each copy renamed so the brute force sees S scans; bounds = sorted values at floor(.025 n), floor(.975 n)
    nodules, excluded, marks, uids = random_case(8)
    n_draws, seed = 40, 5
    r = froc_score(nodules, marks, uids, excluded=excluded, n_bootstrap=n_draws, seed=seed)
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_draws):
        drawn = [uids[i] for i in rng.integers(0, len(uids), size=len(uids))]

        def copies(rows, drawn=drawn):
            return [
                dict(row, seriesuid=f"{u}#{j}")
                for j, u in enumerate(drawn)
                for row in rows
                if row["seriesuid"] == u
            ]

        draw_nodules = copies(nodules)
        if draw_nodules:
            draw_uids = [f"{u}#{j}" for j, u in enumerate(drawn)]
            samples.append(
                brute_force_sensitivities(draw_nodules, copies(excluded), copies(marks), draw_uids)
            )
    samples = np.sort(np.asarray(samples), axis=0)
    n = len(samples)
    assert r.n_bootstrap_used == n
    np.testing.assert_allclose(r.ci_low, samples[math.floor(0.025 * n)], atol=1e-9)
    np.testing.assert_allclose(r.ci_high, samples[math.floor(0.975 * n)], atol=1e-9)
    np.testing.assert_allclose(r.bootstrap_mean, samples.mean(axis=0), atol=1e-9)


def test_bootstrap_skips_draws_without_any_nodule():
    # only S0 has a nodule, found before any FP: every draw holding S0 reads 1 everywhere; the ~32 % of
    # draws without S0 have no sensitivity at all and must not pull the lower bound to 0
    marks = [mark(S0, 0, 0, 0, 0.9)] + [far_mark(u, 0.1) for u in (S1, S2, S3)]
    r = froc_score([nodule(S0, 0, 0, 0)], marks, [S0, S1, S2, S3], n_bootstrap=100, seed=0)
    assert 50 < r.n_bootstrap_used < 90
    np.testing.assert_array_equal(r.ci_low, np.ones(7))
    assert r.cpm_ci == (1.0, 1.0)


def test_candidate_auc_counts_ties_one_half():
    # positives (hits) 0.9, 0.5; negatives 0.5, 0.1: pairs won 1 + 1 + 0.5 + 1 of 4 -> 0.875
    nodules = [nodule(S0, 0, 0, 0), nodule(S1, 0, 0, 0)]
    marks = [mark(S0, 0, 0, 0, 0.9), mark(S1, 0, 0, 0, 0.5), far_mark(S0, 0.5), far_mark(S1, 0.1)]
    assert froc_score(nodules, marks, [S0, S1]).auc == pytest.approx(0.875)
