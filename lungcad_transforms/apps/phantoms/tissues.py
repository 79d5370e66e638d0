"""Tissue classes of the phantoms and what each looks like in CT, PET and MR.

:data:`TISSUES` numbers the classes of every phantom's ``tissues`` map. For each class the tables below
hold its unenhanced and contrast-enhanced CT attenuation (HU), its FDG uptake (body-weight SUV) and its
T1-weighted MR signal; :func:`ct_lut`, :func:`pet_lut` and :func:`mr_lut` turn them into the lookup array
of one case (indexed by tissue code), jittered a little from the case's own random stream so that no two
patients have quite the same tissue values.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["TISSUES"]


#: Tissue codes of the ``tissues`` label map of every phantom.
TISSUES: dict[str, int] = {
    "air": 0,
    "table": 1,
    "table_foam": 2,
    "skin": 3,
    "fat": 4,
    "muscle": 5,
    "cortical_bone": 6,
    "marrow": 7,
    "cartilage": 8,
    "lung": 9,
    "airway": 10,
    "airway_wall": 11,
    "vessel": 12,
    "blood": 13,
    "myocardium": 14,
    "liver": 15,
    "spleen": 16,
    "kidney": 17,
    "bowel": 18,
    "gas": 19,
    "csf": 20,
    "fluid": 21,
    "bladder": 22,
    "nodule": 23,
}


_T = TISSUES


_N_TISSUES = len(TISSUES)


# Unenhanced CT attenuation (HU) per tissue; every case jitters them a little (see ct_lut).
_CT_HU = {
    "air": -1000, "table": 150, "table_foam": -900, "skin": 30, "fat": -100, "muscle": 45,
    "cortical_bone": 1000, "marrow": 230, "cartilage": 120, "lung": -860, "airway": -1000,
    "airway_wall": 30, "vessel": 40, "blood": 40, "myocardium": 45, "liver": 58, "spleen": 48,
    "kidney": 32, "bowel": 25, "gas": -1000, "csf": 10, "fluid": 15, "bladder": 8, "nodule": 40,
}  # fmt: skip


# Portal-venous contrast phase: blood pool, perfused organs and lung vessels enhance.
_CT_HU_CONTRAST = {"vessel": 170, "blood": 190, "myocardium": 110, "liver": 105, "spleen": 115, "kidney": 170}


# FDG uptake (body-weight SUV) per tissue; myocardium and bladder vary most between patients.
_PET_SUV = {
    "air": 0.0, "table": 0.0, "table_foam": 0.0, "skin": 0.6, "fat": 0.3, "muscle": 0.7,
    "cortical_bone": 0.4, "marrow": 1.5, "cartilage": 0.5, "lung": 0.4, "airway": 0.0, "airway_wall": 0.9,
    "vessel": 1.5, "blood": 1.7, "myocardium": 3.0, "liver": 2.2, "spleen": 1.8, "kidney": 3.5,
    "bowel": 1.5, "gas": 0.0, "csf": 0.3, "fluid": 0.5, "bladder": 25.0, "nodule": 6.0,
}  # fmt: skip


# T1-weighted spin-echo signal (arbitrary units): fat and fatty marrow bright, flowing blood dark.
_MR_T1 = {
    "air": 0.0, "table": 0.0, "table_foam": 0.0, "skin": 450.0, "fat": 900.0, "muscle": 300.0,
    "cortical_bone": 20.0, "marrow": 650.0, "cartilage": 250.0, "lung": 35.0, "airway": 0.0,
    "airway_wall": 150.0, "vessel": 40.0, "blood": 50.0, "myocardium": 330.0, "liver": 480.0,
    "spleen": 380.0, "kidney": 360.0, "bowel": 300.0, "gas": 0.0, "csf": 110.0, "fluid": 140.0,
    "bladder": 90.0, "nodule": 340.0,
}  # fmt: skip


# CT numbers that scanners calibrate to (air) or that never vary (the table): no jitter for them.
_CT_FIXED = ("air", "airway", "gas", "table", "table_foam")


def _lut(value: Callable[[str], float]) -> np.ndarray:
    # called in TISSUES order, which fixes the order of the random draws a value may make
    lut = np.zeros(_N_TISSUES, dtype=np.float32)
    for name, code in TISSUES.items():
        lut[code] = value(name)
    return lut


def ct_lut(rng: np.random.Generator, contrast: bool) -> np.ndarray:
    """HU per tissue code for one CT case (float32), contrast-enhanced or not."""
    hu = dict(_CT_HU)
    if contrast:
        hu.update({k: v * rng.uniform(0.85, 1.15) for k, v in _CT_HU_CONTRAST.items()})
    lut = _lut(lambda name: hu[name] if name in _CT_FIXED else hu[name] + rng.uniform(-8, 8))
    # nodule voxels start as the lung they sit in; the CT renderer composites each nodule on top
    lut[_T["nodule"]] = lut[_T["lung"]]
    return lut


def pet_lut(rng: np.random.Generator) -> np.ndarray:
    """SUV per tissue code for one PET case (float32); myocardium and bladder drawn over a wide range."""
    lut = _lut(lambda name: _PET_SUV[name] * (rng.uniform(0.85, 1.15) if _PET_SUV[name] > 0 else 0.0))
    lut[_T["myocardium"]] = rng.uniform(1.5, 8.0)
    lut[_T["bladder"]] = rng.uniform(15.0, 40.0)
    return lut


def mr_lut(rng: np.random.Generator) -> np.ndarray:
    """T1-weighted signal per tissue code for one MR case (float32)."""
    return _lut(lambda name: _MR_T1[name] * rng.uniform(0.92, 1.08))
