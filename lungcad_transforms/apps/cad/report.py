"""``report.html``: one self-contained page per study (images embedded, no script, no external asset)."""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lungcad_transforms.utils.atomic import atomic_file

__all__ = ["write_report_html"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1300px; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { border: 1px solid #bbb; padding: 3px 8px; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #999; } .views img { width: 45%; margin-right: 1%; }
.note { color: #555; font-size: 0.9em; } .nodule { margin-top: 1.2em; }
"""

_COLUMNS = (
    ("#", "label"), ("probability", "probability"), ("long axis (mm)", "long_axis_mm"),
    ("short axis (mm)", "short_axis_mm"), ("mean diameter (mm)", "mean_diameter_mm"),
    ("volume (mm\u00b3)", "volume_mm3"), ("mean HU", "mean_hu"), ("max HU", "max_hu"), ("type", "density"),
    ("Lung-RADS (size only)", "lung_rads_size_category"), ("side", "side"),
    ("centre x, y, z (LPS mm)", "centre"),
)  # fmt: skip


def _image(folder: Path, name: str, alt: str) -> str:
    data = base64.b64encode((folder / name).read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _cell(row: Mapping[str, Any], key: str) -> str:
    if key == "centre":
        return ", ".join(f"{float(row[c]):.1f}" for c in ("coordX", "coordY", "coordZ"))
    value = row.get(key)
    if value is None or value == "":
        return "&ndash;"
    if key == "probability":
        return f"{float(value):.3f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return html.escape(str(value))


def write_report_html(path: str | os.PathLike, report: Mapping[str, Any], folder: str | os.PathLike) -> Path:
    """Write the study's page from its ``report.json`` content; pictures are read from ``folder`` and embedded.

    The page holds the study summary, the nodules sorted by probability (measurements and montage each)
    and the renderings; it loads nothing from anywhere and runs no script.
    """
    folder = Path(folder)
    nodules = sorted(report["nodules"], key=lambda r: -float(r["probability"]))
    montages = dict(zip(range(1, len(report["nodules"]) + 1), report["pictures"]["montages"], strict=False))
    index_of = {id(r): i for i, r in enumerate(report["nodules"], start=1)}
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>lungcad report {html.escape(report['seriesuid'])}</title><style>{_STYLE}</style></head><body>",
        "<h1>Lung nodule CAD report</h1>",
        "<p class='note'>Research software, not a medical device: findings need a radiologist's review.</p>",
        "<h2>Study</h2><table>",
    ]
    summary = [
        ("series / scan", report["seriesuid"]), ("input", report["input"]),
        ("voxels", " x ".join(str(s) for s in report["shape"])),
        ("spacing (mm)", " x ".join(f"{s:g}" for s in report["spacing_mm"])),
        ("lung volume (ml)", f"{report['lung_volume_ml']:.0f}"), ("candidates", str(report["n_candidates"])),
        ("nodules kept", f"{report['n_nodules']} (probability \u2265 {report['threshold']:.2f})"),
        ("processing time", f"{sum(report['timings_s'].values()):.1f} s"),
    ]  # fmt: skip
    parts += [f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in summary]
    parts.append("</table><h2>Nodules</h2>")
    if nodules:
        parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h, _ in _COLUMNS) + "</tr>")
        for row in nodules:
            cells = "".join(
                f"<td class='num'>{index_of[id(row)]}</td>"
                if key == "label"
                else f"<td class='num'>{_cell(row, key)}</td>"
                for _, key in _COLUMNS
            )
            parts.append(f"<tr>{cells}</tr>")
        parts.append(f"</table><p class='note'>{html.escape(report['lung_rads_note'])}</p>")
    else:
        parts.append("<p>No nodule at or above the operating threshold.</p>")
    for row in nodules:
        n = index_of[id(row)]
        if n in montages:
            parts.append(
                f"<div class='nodule'><h3>Nodule {n}: probability {float(row['probability']):.3f}</h3>"
            )
            parts.append(
                _image(folder, montages[n], f"nodule {n}: axial, coronal, sagittal with Grad-CAM") + "</div>"
            )
    if report["pictures"]["renderings"]:
        method = report["pictures"]["renderings"][0]["method"]
        what = (
            "volume rendering (Otsu transfer function)" if method == "vtk" else "maximum-intensity projection"
        )
        parts.append(f"<h2>Lungs: {what}, Grad-CAM in red</h2><div class='views'>")
        for item in report["pictures"]["renderings"]:
            parts.append(_image(folder, item["file"], f"view from the patient's {item['side']}"))
        parts.append("</div>")
    timing_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td class='num'>{v:.2f}</td></tr>"
        for k, v in report["timings_s"].items()
    )
    parts.append(f"<h2>Stage timings</h2><table><tr><th>stage</th><th>s</th></tr>{timing_rows}</table>")
    versions = ", ".join(f"{k} {v}" for k, v in report["versions"].items())
    parts.append(f"<p class='note'>Software: {html.escape(versions)}</p></body></html>")
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return path
