#!/usr/bin/env python
"""Benchmark: ``lungcad detect`` (the whole chain) on the 512 x 512 x 300 benchmark CT, per stage.

The CT is ``make_volume()`` of ``<shared>/bench/ref_lungmask.py`` (300 x 512 x 512 int16, 1 mm voxels,
4 nodules), the volume ``bench_lungmask.py`` uses, written as NIfTI (``--dicom``: as a DICOM series,
which adds the DICOM SEG / SR). ``lungcad detect`` runs in a child process; its wall time, its CPU
time (user + sys, from ``getrusage`` of the child) and the per-stage timings of its ``report.json``
are reported, and written into BENCHMARKS.md between this script's markers unless ``--no-write``.
The peer baseline of the same run is the reference lung-masking pipeline (``zuidhof``) on the same
volume: a classic pipeline that only masks the lungs.

Usage:
    python scripts/bench_detect.py --bundle-dir outputs/demo/bundles [--dicom] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_lungmask import load_reference  # the same reference pipeline, found the same way

REPO_ROOT = Path(__file__).resolve().parents[1]
MARK_START = "<!-- bench_detect:start -->"
MARK_END = "<!-- bench_detect:end -->"


def _child(command: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run a child; (wall s, CPU s of the child, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO_ROOT.parent / "shared")
    parser.add_argument("--bundle-dir", default=None, help="trained bundles (default: the repository's)")
    parser.add_argument("--dicom", action="store_true", help="write the CT as a DICOM series (adds SEG / SR)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = parser.parse_args()

    from lungcad_transforms.data.dicom_writer import write_dicom_series
    from lungcad_transforms.data.image_writer import write_nifti

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_detect."))
    work.mkdir(parents=True, exist_ok=True)
    ref = load_reference(args.shared)
    made = ref.make_volume()
    volume = made[0] if isinstance(made, tuple) else made  # (Z, Y, X) int16, 1 mm
    hu = np.ascontiguousarray(np.asarray(volume).transpose(2, 1, 0))  # (X, Y, Z), LPS index order
    if args.dicom:
        scan = write_dicom_series(hu, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), work / "ct_dicom", modality="CT")
    else:
        scan = write_nifti(hu, (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), work / "bench_ct.nii.gz")
    out = work / "out"
    command = [
        sys.executable,
        "-m",
        "lungcad_transforms.cli",
        "detect",
        str(scan),
        "--out",
        str(out),
        "--no-progress",
    ]
    if args.bundle_dir:
        command += ["--bundle-dir", args.bundle_dir]
    wall, cpu, result = _child(command)
    if result.returncode != 0:
        raise SystemExit(
            f"lungcad detect failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
        )
    (report_path,) = out.glob("*/report.json")
    report = json.loads(report_path.read_text())

    np.save(work / "volume.npy", np.asarray(volume))
    # the peer: the reference lung-masking pipeline alone, timed the same way in its own process
    peer_code = (
        "import importlib.util,sys,numpy as np;"
        f"spec=importlib.util.spec_from_file_location('r',{str(args.shared / 'bench' / 'ref_lungmask.py')!r});"
        "m=importlib.util.module_from_spec(spec);spec.loader.exec_module(m);"
        f"v=np.load({str(work / 'volume.npy')!r});m.mask_zuidhof(v)"
    )
    peer_wall, peer_cpu, peer_result = _child([sys.executable, "-c", peer_code])
    peer_ok = peer_result.returncode == 0

    load = os.getloadavg()[0]
    peer_text = (
        f"wall {peer_wall:.1f} s, CPU {peer_cpu:.1f} s" if peer_ok else "failed: " + peer_result.stderr[-200:]
    )
    rows = "\n".join(f"| {stage} | {seconds:.2f} |" for stage, seconds in report["timings_s"].items())
    outputs = ", ".join(f"{k} {v:.2f} s" for k, v in report.get("output_timings_s", {}).items())
    section = f"""{MARK_START}
## CAD chain: `lungcad detect` on the 512 x 512 x 300 benchmark CT

- command: `python scripts/bench_detect.py --bundle-dir {args.bundle_dir or "bundles"}{" --dicom" if args.dicom else ""}`
- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}; 1-minute load average {load:.1f} right after the run (the machine is shared: wall time is inflated, CPU time is the figure to compare; on a quiet 2-core machine wall is about CPU / 2)
- date: {dt.date.today().isoformat()}
- data: `make_volume()` of `../shared/bench/ref_lungmask.py`, 300 x 512 x 512 int16 at 1 mm, written as {"a DICOM series" if args.dicom else "NIfTI"}; {report["n_candidates"]} candidate(s), {report["n_nodules"]} nodule(s) kept
- weights: {", ".join(f"{k} sha256 {v['sha256'][:12]}" for k, v in report["weights"].items())}

| stage | wall (s) |
|---|---|
{rows}

Outputs stage: {outputs}.

**Whole process (child process, imports included): wall {wall:.1f} s, CPU {cpu:.1f} s (user + sys)**; target <= 60 s on 2 cores.
Peer baseline in the same run, the reference lung-masking pipeline alone on the same volume: {peer_text}.
No GPU was lent to this task, so there is no GPU figure.
{MARK_END}"""
    print(section)
    if not args.no_write:
        bench = REPO_ROOT / "BENCHMARKS.md"
        text = bench.read_text(encoding="utf-8")
        pattern = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.S)
        text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section + "\n"
        bench.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
