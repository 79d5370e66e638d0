"""LUNA16 evaluation cases shared by the FROC, evaluation-command, table and plot tests.

Nodules, marks (results rows) and CSV writers in LUNA16 form, and a random case generator with many ties.
"""

from __future__ import annotations

import csv

import numpy as np

S0, S1, S2, S3 = (f"1.3.6.1.4.1.14519.5.2.1.6279.6001.10{i}" for i in range(4))
UNLISTED = "1.3.6.1.4.1.14519.5.2.1.6279.6001.999"
ANN_COLS = ["seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"]
RES_COLS = ["seriesuid", "coordX", "coordY", "coordZ", "probability"]


def nodule(uid: str, x: float, y: float, z: float, diameter: float = 10.0) -> dict:
    return {"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, "diameter_mm": diameter}


def mark(uid: str, x: float, y: float, z: float, probability: float) -> dict:
    return {"seriesuid": uid, "coordX": x, "coordY": y, "coordZ": z, "probability": probability}


def far_mark(uid: str, probability: float, k: int = 0) -> dict:
    """A false positive: 100 mm from every nodule used in these tests."""
    return mark(uid, 100.0 + k, 100.0, 100.0, probability)


def write_csv(path, columns, rows):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row[c] for c in columns])
    return path


def random_case(seed):
    rng = np.random.default_rng(seed)
    uids = [f"1.2.826.0.{seed}.{i}" for i in range(int(rng.integers(3, 9)))]
    nodules, excluded, marks = [], [], []
    for uid in uids + [UNLISTED]:
        for _ in range(int(rng.integers(0, 4))):
            nodules.append(
                nodule(uid, *rng.integers(-30, 30, 3).astype(float), float(rng.choice([4.0, 6.5, 12.0])))
            )
        for _ in range(int(rng.integers(0, 3))):
            excluded.append(
                nodule(uid, *rng.integers(-30, 30, 3).astype(float), float(rng.choice([-1.0, 5.0])))
            )
        own = [n for n in nodules if n["seriesuid"] == uid]
        for _ in range(int(rng.choice([0, 5, 20, 110]))):
            if own and rng.random() < 0.3:
                n = own[int(rng.integers(len(own)))]
                xyz = np.array([n["coordX"], n["coordY"], n["coordZ"]]) + rng.integers(-3, 4, 3)
            else:
                xyz = rng.integers(-30, 30, 3)
            # 2 decimals: plenty of ties, among FPs, among hits and across them
            marks.append(mark(uid, *map(float, xyz), float(np.round(rng.random(), 2))))
    nodules.append(nodule(uids[0], 0.0, 0.0, 0.0, 8.0))  # at least one included nodule in a listed scan
    return nodules, excluded, marks, uids
