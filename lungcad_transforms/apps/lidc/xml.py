"""LIDC-IDRI reader XML: contours, marks and characteristics of up to four readers."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lungcad_transforms.errors import InputError

__all__ = ["CHARACTERISTICS", "LidcContour", "LidcMark", "LidcRead", "read_lidc_xml", "find_lidc_xml"]


CHARACTERISTICS = (
    "subtlety",
    "internalStructure",
    "calcification",
    "sphericity",
    "margin",
    "lobulation",
    "spiculation",
    "texture",
    "malignancy",
)


@dataclass
class LidcContour:
    """One outline of one reader's nodule on one slice.

    Attributes:
        z_mm: ``imageZposition`` (the slice's ``ImagePositionPatient`` z, mm).
        sop_uid: ``imageSOP_UID`` of the slice.
        inclusion: False for an outline that cuts a hole out of the nodule.
        points_col_row: ``(N, 2)`` integer pixel positions (column = ``xCoord``, row = ``yCoord``).
    """

    z_mm: float
    sop_uid: str
    inclusion: bool
    points_col_row: np.ndarray


@dataclass
class LidcMark:
    """One reader's mark of one nodule (``unblindedReadNodule``)."""

    reader: str
    nodule_id: str
    contours: list[LidcContour]
    characteristics: dict[str, int] = field(default_factory=dict)

    @property
    def is_small(self) -> bool:
        """A nodule under 3 mm: LIDC gives only its centre point, no outline."""
        return all(len(c.points_col_row) < 3 for c in self.contours)


@dataclass
class LidcRead:
    """The content of one LIDC-IDRI XML file that matters for nodule masks."""

    path: Path
    series_uid: str
    study_uid: str
    readers: list[str]
    marks: list[LidcMark]
    n_non_nodules: int


def _local(tag: str) -> str:
    # the LIDC files use the namespace http://www.nih.gov on every element; compare local names only
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ET.Element | None, default: str = "") -> str:
    return element.text.strip() if element is not None and element.text is not None else default


def read_lidc_xml(path: str | os.PathLike) -> LidcRead:
    """Read the reader marks of an LIDC-IDRI CT annotation file.

    Args:
        path: the XML file (``069.xml`` etc. next to the series' DICOM files).

    Returns:
        an :class:`LidcRead`: series UID, reader ids (one per reading session), the nodule marks
        (small ones included, flagged by :attr:`LidcMark.is_small`), and the number of non-nodule marks.

    Raises:
        InputError: not XML, not an LIDC CT read message (the chest radiograph files use
            ``IdriReadMessage``), or an outline point that is not an integer pixel position.

    Examples:
        >>> read = read_lidc_xml("LIDC-IDRI-0003/.../072.xml")  # doctest: +SKIP
        >>> len(read.readers), sum(not m.is_small for m in read.marks)  # doctest: +SKIP
        (4, 13)
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise InputError(path, "LIDC annotation file not found") from None
    except ET.ParseError as err:
        raise InputError(path, f"is not well-formed XML ({err})") from None
    if _local(root.tag) != "LidcReadMessage":
        raise InputError(path, f"is not an LIDC CT read message (root element {_local(root.tag)!r})")
    header = _child(root, "ResponseHeader")
    series_uid = _text(_child(header, "SeriesInstanceUid")) if header is not None else ""
    study_uid = _text(_child(header, "StudyInstanceUID")) if header is not None else ""
    readers: list[str] = []
    marks: list[LidcMark] = []
    n_non_nodules = 0
    for number, session in enumerate(_children(root, "readingSession"), start=1):
        # the anonymised radiologist ids are not unique across all files, but they are within one file;
        # a missing id falls back to the session's position
        reader = _text(_child(session, "servicingRadiologistID")) or f"session-{number}"
        readers.append(reader)
        n_non_nodules += len(_children(session, "nonNodule"))
        for nodule in _children(session, "unblindedReadNodule"):
            nodule_id = _text(_child(nodule, "noduleID"))
            characteristics: dict[str, int] = {}
            block = _child(nodule, "characteristics")
            if block is not None:
                for name in CHARACTERISTICS:
                    value = _text(_child(block, name))
                    if value.lstrip("-").isdigit():
                        characteristics[name] = int(value)
            contours = []
            for roi in _children(nodule, "roi"):
                try:
                    z_mm = float(_text(_child(roi, "imageZposition")))
                    points = [
                        (int(_text(_child(edge, "xCoord"))), int(_text(_child(edge, "yCoord"))))
                        for edge in _children(roi, "edgeMap")
                    ]
                except ValueError as err:
                    raise InputError(
                        path, f"reader {reader}, nodule {nodule_id}: unreadable outline ({err})"
                    ) from None
                contours.append(
                    LidcContour(
                        z_mm=z_mm,
                        sop_uid=_text(_child(roi, "imageSOP_UID")),
                        inclusion=_text(_child(roi, "inclusion"), "TRUE").upper() != "FALSE",
                        points_col_row=np.asarray(points, dtype=np.int64).reshape(-1, 2),
                    )
                )
            marks.append(LidcMark(reader, nodule_id, contours, characteristics))
    return LidcRead(path, series_uid, study_uid, readers, marks, n_non_nodules)


def find_lidc_xml(root: str | os.PathLike) -> dict[str, Path]:
    """Map SeriesInstanceUID -> LIDC XML file for every LIDC CT read message under ``root``.

    LIDC-IDRI keeps the XML beside the DICOM files; some mirrors keep annotations in a separate tree
    (``tcia-lidc-xml``). Matching by the UID in the XML header finds them either way. Files that are not
    LIDC CT read messages (chest radiograph reads, other XML) are ignored.

    Examples:
        >>> find_lidc_xml("/data/LIDC-IDRI")  # doctest: +SKIP
        {'1.3.6.1.4.1.14519.5.2.1.6279.6001.1707...': PosixPath('/data/LIDC-IDRI/LIDC-IDRI-0003/.../072.xml')}
    """
    found: dict[str, Path] = {}
    for path in sorted(Path(root).rglob("*.xml")):
        try:
            read = read_lidc_xml(path)
        except InputError:
            continue
        if read.series_uid:
            found.setdefault(read.series_uid, path)
    return found
