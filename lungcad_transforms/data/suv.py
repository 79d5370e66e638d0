"""Body-weight SUV from the DICOM tags of a PET series."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.valuerep import DA, DT, TM

from lungcad_transforms.data.dicom import dicom_series_files
from lungcad_transforms.errors import InputError

__all__ = ["suv_body_weight_factor"]


# a series time this far after the first acquisition was rewritten by post-processing, not the scan start
_SERIES_TIME_SLACK = dt.timedelta(seconds=1)


def _tag(keyword: str) -> str:
    tag = tag_for_keyword(keyword)
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})" if tag is not None else keyword


def _required(ds: Dataset, keyword: str, where: str, within: str = "") -> Any:
    value = ds.get(keyword)
    if value is None or value == "":
        place = f" in {within}" if within else ""
        raise InputError(where, f"PET header lacks {_tag(keyword)}{place}, needed for SUV")
    return value


def _positive(ds: Dataset, keyword: str, where: str, within: str = "") -> float:
    raw = _required(ds, keyword, where, within)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InputError(where, f"{_tag(keyword)} is {raw!r}, not a number") from None
    if not value > 0 or value == float("inf"):
        raise InputError(where, f"{_tag(keyword)} is {raw!r}; it must be a positive number")
    return value


def _time(ds: Dataset, keyword: str, where: str) -> dt.time | None:
    raw = ds.get(keyword)
    if raw in (None, ""):
        return None
    try:
        # older writers put ACR-NEMA style "HH:MM:SS" into TM
        parsed = TM(str(raw).strip().replace(":", ""))
    except ValueError:
        raise InputError(where, f"{_tag(keyword)} is {str(raw)!r}, not a DICOM time") from None
    return dt.time(parsed.hour, parsed.minute, parsed.second, parsed.microsecond)


def _date(ds: Dataset, keywords: Sequence[str], where: str) -> dt.date | None:
    for keyword in keywords:
        raw = ds.get(keyword)
        if raw in (None, ""):
            continue
        try:
            parsed = DA(str(raw).strip().replace(".", ""))
        except ValueError:
            raise InputError(where, f"{_tag(keyword)} is {str(raw)!r}, not a DICOM date") from None
        return dt.date(parsed.year, parsed.month, parsed.day)
    return None


def _series_start(headers: Sequence[Dataset], where: str) -> dt.datetime:
    """The time the image values are decay-corrected to with DecayCorrection START."""
    first = headers[0]
    series_date = _date(first, ("SeriesDate", "AcquisitionDate", "StudyDate"), where)
    date = series_date or dt.date(2000, 1, 1)  # only differences matter when no date is stored at all
    series_time = _time(first, "SeriesTime", where)
    acquisitions = []
    for ds in headers:
        acquisition_time = _time(ds, "AcquisitionTime", where)
        if acquisition_time is None:
            continue
        own_date = _date(ds, ("AcquisitionDate",), where)
        acquired = dt.datetime.combine(own_date or date, acquisition_time)
        if own_date is None and series_time is not None:
            series_clock = dt.datetime.combine(date, series_time)
            if acquired < series_clock - dt.timedelta(hours=12):
                # a bed position after midnight of a series started before it, with no date of its own
                acquired += dt.timedelta(days=1)
        acquisitions.append(acquired)
    earliest_acquisition = min(acquisitions) if acquisitions else None
    if series_time is None and earliest_acquisition is None:
        raise InputError(
            where, f"PET header lacks {_tag('SeriesTime')} and {_tag('AcquisitionTime')}, needed for SUV"
        )
    if series_time is None:
        return earliest_acquisition  # type: ignore[return-value]
    series = dt.datetime.combine(date, series_time)
    if earliest_acquisition is not None and series > earliest_acquisition + _SERIES_TIME_SLACK:
        return earliest_acquisition
    return series


def _injection(info: Dataset, start: dt.datetime, where: str) -> dt.datetime:
    within = _tag("RadiopharmaceuticalInformationSequence")
    raw = info.get("RadiopharmaceuticalStartDateTime")
    if raw not in (None, ""):
        try:
            stamp = DT(str(raw).strip())
        except ValueError:
            raise InputError(
                where, f"{_tag('RadiopharmaceuticalStartDateTime')} is {str(raw)!r}, not a DICOM date-time"
            ) from None
        # series times carry no zone: compare as local wall-clock times
        injected = dt.datetime(
            stamp.year, stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second, stamp.microsecond
        )
        if injected > start:
            raise InputError(where, f"injection ({injected}) is after the series start ({start})")
        return injected
    clock = _time(info, "RadiopharmaceuticalStartTime", where)
    if clock is None:
        raise InputError(
            where,
            f"PET header lacks {_tag('RadiopharmaceuticalStartTime')} and {_tag('RadiopharmaceuticalStartDateTime')} "
            f"in {within}, needed for SUV",
        )
    injected = dt.datetime.combine(start.date(), clock)
    if injected > start:
        # only a time of day: an injection "after" the scan was given before midnight, the day before
        injected -= dt.timedelta(days=1)
    return injected


def _headers(
    source: Dataset | str | os.PathLike | Sequence[str | os.PathLike], seriesuid: str | None = None
) -> tuple[list[Dataset], str]:
    if isinstance(source, Dataset):
        return [source], str(getattr(source, "filename", "") or "<dataset>")
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise InputError(path, "does not exist")
        if path.is_file():
            try:
                return [pydicom.dcmread(path, stop_before_pixels=True)], str(path)
            except Exception as err:  # noqa: BLE001 - pydicom raises many types on non-DICOM input
                raise InputError(
                    path, f"is not a readable DICOM file, SUV needs the PET DICOM header ({err})"
                ) from err
        files = dicom_series_files(path, seriesuid)
        where = str(path)
    else:
        files = dicom_series_files(source, seriesuid)
        where = str(files[0])
    return [pydicom.dcmread(f, stop_before_pixels=True) for f in files], where


def suv_body_weight_factor(
    ds_or_path: Dataset | str | os.PathLike | Sequence[str | os.PathLike], seriesuid: str | None = None
) -> float:
    """The factor that turns a PET image in Bq/ml into body-weight SUV (g/ml).

    Args:
        ds_or_path: a pydicom ``Dataset`` of one PET slice, the path of one PET DICOM file, a PET series
            folder, or a list of one series' files. With several files, the earliest AcquisitionTime of
            the series is used where the SeriesTime was rewritten after the scan.
        seriesuid: which series to use when a folder holds several.

    Returns:
        ``PatientWeight[g] / (RadionuclideTotalDose[Bq] * 2^(-dt / RadionuclideHalfLife))``, with ``dt``
        from injection to series start for ``DecayCorrection = START`` and 0 for ``ADMIN``.

    Raises:
        InputError: naming the file and the missing or invalid tag: Units not BQML, no PatientWeight,
            no RadiopharmaceuticalInformationSequence / dose / half-life / injection time, DecayCorrection
            NONE (per-frame correction, not a single factor), injection after the series start.

    Examples:
        An 18F-FDG scan: 66 kg, 500 MBq injected 46 min 52 s before the series start (half-life 6588 s)
        gives about 1.77e-4 g/Bq, so 5600 Bq/ml of muscle reads SUV 1.0:

        >>> factor = suv_body_weight_factor("PT_CTAC_dicom/1-001.dcm")  # doctest: +SKIP
        >>> round(factor * 1e4, 3)  # doctest: +SKIP
        1.774
    """
    headers, where = _headers(ds_or_path, seriesuid)
    ds = headers[0]
    units = str(_required(ds, "Units", where)).strip().upper()
    if units != "BQML":
        raise InputError(
            where, f"{_tag('Units')} is {units!r}, not BQML: SUV needs activity concentration in Bq/ml"
        )
    weight_g = _positive(ds, "PatientWeight", where) * 1000.0
    sequence = ds.get("RadiopharmaceuticalInformationSequence")
    if not sequence:
        raise InputError(
            where, f"PET header lacks {_tag('RadiopharmaceuticalInformationSequence')}, needed for SUV"
        )
    info = sequence[0]
    within = _tag("RadiopharmaceuticalInformationSequence")
    dose_bq = _positive(info, "RadionuclideTotalDose", where, within)
    half_life_s = _positive(info, "RadionuclideHalfLife", where, within)
    correction = str(_required(ds, "DecayCorrection", where)).strip().upper()
    if correction == "ADMIN":
        return weight_g / dose_bq
    if correction != "START":
        raise InputError(
            where,
            f"{_tag('DecayCorrection')} is {correction!r}: only START and ADMIN give one SUV factor per series",
        )
    start = _series_start(headers, where)
    injected = _injection(info, start, where)
    elapsed_s = (start - injected).total_seconds()
    return weight_g / (dose_bq * 2.0 ** (-elapsed_s / half_life_s))
