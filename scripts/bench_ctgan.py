"""CT-GAN edit speed: inject / remove per location after loading, against a cold editor per location.

For each scan (a phantom at the bundle's geometry and, when present, the real CPTAC chest CT of
``../shared/data/real``), ``--n`` lung locations are edited with one warm ``NoduleEditor`` (generators
loaded, lung mask of the scan computed once: what ``edit_scans`` and ``RandInjectNoduled`` do) and, as the
peer baseline measured in the same run, with a new editor per location (generator built from the bundle
config and its checkpoint loaded, lung mask recomputed: what one ``lungcad ctgan`` call per location does,
without the file I/O). Times are medians per location, wall and CPU (process time), torch on ``--threads``.

Example: ``python scripts/bench_ctgan.py --json outputs/bench_ctgan.json``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

__all__ = ["main"]


def _lung_points(editor: Any, ct: Any, n: int, seed: int) -> list[np.ndarray]:
    from scipy import ndimage

    from lungcad_transforms.apps.ctgan import cut_cube
    from lungcad_transforms.data.coords import voxel_to_world
    from lungcad_transforms.errors import InputError

    spacing = np.sqrt((ct.affine.numpy()[:3, :3] ** 2).sum(0))
    deep = np.argwhere(ndimage.distance_transform_edt(editor.lung_mask(ct), sampling=spacing) >= 14.0)
    rng = np.random.default_rng(seed)
    points: list[np.ndarray] = []
    for idx in rng.permutation(len(deep)):
        at = voxel_to_world(deep[idx], ct.affine.numpy())[0]
        try:
            cut_cube(ct.numpy()[0], ct.affine.numpy(), at)
        except InputError:
            continue
        if all(np.linalg.norm(at - p) > 30 for p in points):
            points.append(at)
        if len(points) == n:
            break
    return points


def _timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def _edit(editor: Any, edit: str, ct: Any, at: np.ndarray, bundle: Path | None = None) -> Any:
    from lungcad_transforms.apps.ctgan import NoduleEditor

    editor = editor or NoduleEditor(bundle)  # cold: a new editor builds and loads its generator
    return editor.inject(ct, at, 8.0) if edit == "inject" else editor.remove(ct, at)


def bench_scan(name: str, ct: Any, bundle: Path, n: int) -> dict[str, Any]:
    from lungcad_transforms.apps.ctgan import NoduleEditor

    warm = NoduleEditor(bundle)
    lung_wall, lung_cpu = _timed(lambda: warm.lung_mask(ct))
    points = _lung_points(warm, ct, n, 0)
    warm.inject(ct, points[0], 8.0), warm.remove(ct, points[0])  # load both generators before timing
    out: dict[str, Any] = {"scan": name, "shape": list(ct.shape[1:]), "locations": len(points),
                           "lung_mask_s": lung_wall, "lung_mask_cpu_s": lung_cpu}  # fmt: skip
    for edit in ("inject", "remove"):
        times = {"warm": [], "cold": []}
        for at in points:
            times["warm"].append(_timed(partial(_edit, warm, edit, ct, at)))
            times["cold"].append(_timed(partial(_edit, None, edit, ct, at, bundle)))
        for mode, values in times.items():
            arr = np.array(values)
            out[f"{edit}_{mode}_s"] = float(np.median(arr[:, 0]))
            out[f"{edit}_{mode}_cpu_s"] = float(np.median(arr[:, 1]))
        out[f"{edit}_ratio_cold_over_warm"] = out[f"{edit}_cold_s"] / out[f"{edit}_warm_s"]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=str(REPO / "bundles" / "lung_nodule_ct_gan"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--n", type=int, default=5, help="locations per scan")
    parser.add_argument(
        "--real",
        default=str(Path(os.environ.get("LUNGCAD_TEST_DATA", REPO.parent / "shared" / "data")) / "real"),
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.image_writer import write_nifti

    results = []
    tmp = REPO / "outputs" / "bench_ctgan"
    tmp.mkdir(parents=True, exist_ok=True)
    phantom = make_ct_phantom((128, 128, 96), spacing=(1.0, 1.0, 1.25), seed=9001)
    path = write_nifti(phantom.hu, phantom.spacing, phantom.origin_lps, tmp / "phantom.nii.gz")
    results.append(
        bench_scan("phantom 128x128x96, 1 x 1 x 1.25 mm", load_image(path), Path(args.bundle), args.n)
    )
    real = sorted((Path(args.real) / "chest_ct" / "cptac_c3n00247_ct").glob("*.nii*"))
    if real:
        results.append(
            bench_scan(
                f"real CPTAC C3N-00247 chest CT ({real[0].name})",
                load_image(real[0]),
                Path(args.bundle),
                args.n,
            )
        )
    summary = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, torch threads {args.threads}",
               "torch": torch.__version__, "cuda": torch.cuda.is_available(), "date": time.strftime("%Y-%m-%d"),
               "load_average_after": os.getloadavg()[0], "results": results}  # fmt: skip
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()
