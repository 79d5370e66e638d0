"""Matching LUNA16 marks to findings: which candidate hits which nodule, and the per-scan cap.

The rules of the official evaluation script, vectorised: a hit is a squared distance strictly below the
squared radius, computed in the script's order of operations; the cap keeps a crowded scan's marks
strictly more probable than its ``max_per_scan + 1``-th.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["scan_indices", "hits_within_radius", "cap_per_scan"]


# pairs (finding, candidate) compared at once while matching: bounds memory to ~200 MB on any input
_MAX_PAIRS_PER_CHUNK = 4_000_000


def scan_indices(uids: Sequence[str], index: Mapping[str, int]) -> np.ndarray:
    """Position of each id in ``index`` (the listed scans), -1 for an unlisted scan."""
    return np.fromiter((index.get(uid, -1) for uid in uids), dtype=np.int64, count=len(uids))


def hits_within_radius(
    cand_scan: np.ndarray,
    cand_xyz: np.ndarray,
    find_scan: np.ndarray,
    find_xyz: np.ndarray,
    find_r2: np.ndarray,
    n_scans: int,
) -> tuple[np.ndarray, np.ndarray]:
    """All (candidate, finding) pairs in the same scan with squared distance < squared radius.

    Done by hand (not a KD-tree) because the rule is a strict ``<`` on the same floating sums as the
    official script, and findings are few per scan: comparing each finding with its scan's candidates
    is a few million pairs on LUNA16, processed in bounded chunks.
    """
    order = np.argsort(cand_scan, kind="stable")
    sorted_scan = cand_scan[order]
    scans = np.arange(n_scans)
    starts = np.searchsorted(sorted_scan, scans, side="left")
    counts = np.searchsorted(sorted_scan, scans, side="right") - starts
    per_finding = counts[find_scan]
    cum = np.cumsum(per_finding)
    hit_cand: list[np.ndarray] = []
    hit_find: list[np.ndarray] = []
    f0, n_find = 0, len(find_scan)
    while f0 < n_find:
        base = cum[f0 - 1] if f0 else 0
        f1 = max(f0 + 1, int(np.searchsorted(cum, base + _MAX_PAIRS_PER_CHUNK, side="right")))
        f1 = min(f1, n_find)
        chunk = np.arange(f0, f1)
        n_pairs = per_finding[chunk]
        f_rep = np.repeat(chunk, n_pairs)
        within = np.arange(int(n_pairs.sum())) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
        c = order[starts[find_scan[f_rep]] + within]
        # same order of operations as the script (x, then y, then z) so the strict boundary agrees bit for bit
        d = cand_xyz[c] - find_xyz[f_rep]
        d2 = d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]
        hit = d2 < find_r2[f_rep]
        hit_cand.append(c[hit])
        hit_find.append(f_rep[hit])
        f0 = f1
    if not hit_cand:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(hit_cand), np.concatenate(hit_find)


def cap_per_scan(scan: np.ndarray, prob: np.ndarray, n_scans: int, max_per_scan: int) -> np.ndarray:
    """Keep-mask of the LUNA16 rule: in a scan with more than ``max_per_scan`` candidates, keep those
    strictly more probable than its ``max_per_scan + 1``-th highest probability."""
    keep = np.ones(len(scan), dtype=bool)
    if max_per_scan <= 0 or len(scan) == 0:
        return keep
    counts = np.bincount(scan, minlength=n_scans)
    crowded = counts > max_per_scan
    if not crowded.any():
        return keep
    order = np.lexsort((-prob, scan))  # by scan, most probable first
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    threshold = np.full(n_scans, -np.inf)
    threshold[crowded] = prob[order[starts[crowded] + max_per_scan]]
    return prob > threshold[scan]
