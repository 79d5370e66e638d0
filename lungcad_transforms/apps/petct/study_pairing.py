"""Pair the PET and CT series of each study in a folder of DICOM files, and say why others are left out.

A PET/CT scanner writes both series into one study (one Study Instance UID) on one Frame of Reference.
Under a folder holding any number of studies, each study's CT and PET series are paired when they share
the Frame of Reference and the PET header carries what body-weight SUV needs; a study with only one of
the two, with frames that do not match, or with missing SUV tags is reported with its reason and skipped.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from typing import Any

from lungcad_transforms.errors import InputError

logger = logging.getLogger(__name__)

__all__ = ["PairedStudies", "pair_petct_studies"]


class PairedStudies(list):
    """The paired studies (a list of entries), with :attr:`skipped`: ``(study, reason)`` of the others."""

    def __init__(self, studies: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> None:
        super().__init__(studies)
        self.skipped = skipped


def _first_file(entry: dict[str, Any]) -> str:
    from lungcad_transforms.data.dicom import dicom_series_files

    image = entry["image"]
    if isinstance(image, (list, tuple)):
        return str(image[0])
    if os.path.isdir(image):
        return str(dicom_series_files(image, entry.get("seriesuid"))[0])
    return str(image)


def _header(entry: dict[str, Any]) -> dict[str, str]:
    import pydicom

    ds = pydicom.dcmread(
        _first_file(entry),
        stop_before_pixels=True,
        specific_tags=["StudyInstanceUID", "FrameOfReferenceUID", "PatientID", "Modality"],
    )
    return {
        key: str(ds.get(key, "") or "") for key in ("StudyInstanceUID", "FrameOfReferenceUID", "PatientID")
    }


def pair_petct_studies(folder: str | os.PathLike, check_suv: bool = True) -> PairedStudies:
    """The PET/CT pairs under ``folder`` (any depth), one per study.

    Args:
        folder: a folder of DICOM files (one or several studies, series in any sub-folders).
        check_suv: check the PET header for the SUV tags now, so that a study without them is reported
            here rather than failing later.

    Returns:
        a list of ``{"ct": entry, "pet": entry, "patient", "study", "frame_of_reference_uid"}`` (the entries
        as :func:`~lungcad_transforms.data.image_reader.find_images` gives them) with ``.skipped``.
        Where a study holds several CT or PET series, the first CT / PET pair on one frame is taken.

    Raises:
        InputError: the folder does not exist or holds no image at all.

    Examples:
        >>> pairs = pair_petct_studies("NSCLC-Radiogenomics/R01-005")  # doctest: +SKIP
        >>> len(pairs), pairs.skipped  # doctest: +SKIP
        (1, [])
    """
    from lungcad_transforms.data.image_reader import find_images
    from lungcad_transforms.data.suv import suv_body_weight_factor

    by_study: dict[str, dict[str, list[tuple[dict[str, Any], dict[str, str]]]]] = defaultdict(
        lambda: defaultdict(list)
    )
    skipped: list[tuple[str, str]] = []
    for entry in find_images(folder):
        modality = str(entry.get("modality") or "").upper()
        if modality not in ("CT", "PT"):
            reason = f"modality {modality!r} is neither CT nor PT" if modality else "not a DICOM series"
            skipped.append(
                (str(entry["image"] if isinstance(entry["image"], str) else entry["image"][0]), reason)
            )
            continue
        header = _header(entry)
        by_study[header["StudyInstanceUID"] or f"series:{entry['seriesuid']}"][modality].append(
            (entry, header)
        )
    studies = []
    for study_uid, series in by_study.items():
        cts, pets = series.get("CT", []), series.get("PT", [])
        if not cts or not pets:
            have = "CT" if cts else "PET"
            skipped.append((study_uid, f"study has only {have}: a PET/CT pair needs both series"))
            continue
        pair = next(
            ((c, p) for c in cts for p in pets if c[1]["FrameOfReferenceUID"] == p[1]["FrameOfReferenceUID"]),
            None,
        )
        if pair is None:
            frames = sorted(
                {c[1]["FrameOfReferenceUID"] for c in cts} | {p[1]["FrameOfReferenceUID"] for p in pets}
            )
            skipped.append(
                (study_uid, f"CT and PET are on different Frames of Reference ({', '.join(frames)})")
            )
            continue
        (ct, ct_header), (pet, _) = pair
        if check_suv:
            try:
                suv_body_weight_factor(pet["image"], pet.get("seriesuid"))
            except InputError as err:
                skipped.append((study_uid, f"PET has no usable SUV tags: {err}"))
                continue
        studies.append({"ct": ct, "pet": pet, "patient": ct_header["PatientID"] or study_uid, "study": study_uid,
                        "frame_of_reference_uid": ct_header["FrameOfReferenceUID"]})  # fmt: skip
    for where, reason in skipped:
        logger.warning("PET/CT pairing: skipping %s: %s", where, reason)
    return PairedStudies(studies, skipped)
