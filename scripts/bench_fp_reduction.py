"""Benchmark: how many nodule candidates per second the false-positive-reduction bundle scores on CPU.

For both networks of ``bundles/lung_nodule_ct_fp_reduction`` (the MGI-CNN and the small 3D CNN, with the
widths and patch geometry of the bundle's ``train.json`` and its ``small3dcnn.json`` overlay) it measures,
with ``--threads`` CPU threads:

- patch extraction: scans loaded from NIfTI and every candidate cut at three scales (once per scan),
  against the peer baseline of loading the scan again for every candidate (what a per-candidate
  ``Dataset.__getitem__`` that opens its scan does);
- scoring: the network's forward pass over all candidates (eval mode, batches of ``--batch``);
- end to end: extraction plus scoring, candidates per second;
- training: forward + backward + optimiser step, samples per second (batch 32).

The scans are synthetic phantoms with the bundle's embedded-data geometry (128x128x96 voxels of
1.2 x 1.2 x 1.5 mm) and its candidate mix (nodules and hard negatives, about 40 per scan). Weights are
random: speed does not depend on them.

Usage::

    python scripts/bench_fp_reduction.py --threads 2 --scans 4 --json bench_fp.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "lung_nodule_ct_fp_reduction" / "configs"


def _bundle_settings() -> dict:
    config = json.loads((CONFIGS / "train.json").read_text())
    small3dcnn = json.loads((CONFIGS / "small3dcnn.json").read_text())

    def resolve(network_def: dict) -> dict:
        args = {k: v for k, v in network_def.items() if k != "_target_"}
        return {k: (config["patch_size"] if v == "@patch_size" else v) for k, v in args.items()}

    return {
        "scales_mm": config["scales_mm"],
        "patch_size": config["patch_size"],
        "hu_window": config["hu_window"],
        "mgicnn": resolve(config["network_def"]),
        "small3dcnn": resolve(small3dcnn["network_def"]),
    }


def _networks(settings: dict) -> dict[str, torch.nn.Module]:
    from lungcad_transforms.networks.nets.mgicnn import MGICNN
    from lungcad_transforms.networks.nets.small3dcnn import Small3DCNN

    return {"mgicnn": MGICNN(**settings["mgicnn"]), "small3dcnn": Small3DCNN(**settings["small3dcnn"])}


def _write_scans(folder: Path, n_scans: int) -> tuple[list[dict], list[dict]]:
    from lungcad_transforms.apps.detection.phantom_candidates import phantom_candidates
    from lungcad_transforms.apps.phantoms.ct import make_ct_phantom
    from lungcad_transforms.data.image_writer import write_nifti

    scans, rows = [], []
    for i in range(n_scans):
        ct = make_ct_phantom((128, 128, 96), spacing=(1.2, 1.2, 1.5), seed=900 + i)
        path = write_nifti(ct.hu, ct.spacing, ct.origin_lps, folder / f"{ct.seriesuid}.nii.gz")
        scans.append({"image": str(path), "seriesuid": ct.seriesuid})
        rows += phantom_candidates(ct, seed=900 + i)
    return scans, rows


def _time(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (the target machine has 2 cores)"
    )
    parser.add_argument("--scans", type=int, default=4, help="phantom scans to score")
    parser.add_argument("--batch", type=int, default=64, help="inference batch size")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps per network")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from lungcad_transforms.apps.detection.candidate_dataset import MultiScalePatchDataset

    settings = _bundle_settings()
    report: dict = {"threads": args.threads, "scans": args.scans, "patch_size": settings["patch_size"]}
    with tempfile.TemporaryDirectory() as tmp:
        scans, rows = _write_scans(Path(tmp), args.scans)
        holder: dict = {}

        def extract() -> None:
            holder["ds"] = MultiScalePatchDataset(
                scans, rows, settings["scales_mm"], settings["patch_size"], settings["hu_window"]
            )

        def extract_per_candidate() -> None:
            for row in rows:
                MultiScalePatchDataset(
                    scans, [row], settings["scales_mm"], settings["patch_size"], settings["hu_window"]
                )

        extract()  # warm-up: first ITK import and reader set-up are not per-scan costs
        t_extract = _time(extract)
        t_per_candidate = _time(extract_per_candidate)
        dataset = holder["ds"]
    n = len(dataset)
    patches = torch.from_numpy(dataset.patches.astype("float32"))
    report.update(
        candidates=n,
        extraction_s=t_extract,
        extraction_candidates_per_s=n / t_extract,
        baseline_per_candidate_loading_s=t_per_candidate,
        baseline_per_candidate_loading_candidates_per_s=n / t_per_candidate,
        extraction_speedup=t_per_candidate / t_extract,
    )
    print(
        f"{n} candidates in {args.scans} scans; extraction {t_extract:.2f} s ({n / t_extract:.0f} candidates/s); "
        f"baseline, the scan loaded per candidate: {t_per_candidate:.2f} s ({n / t_per_candidate:.0f} candidates/s), "
        f"{t_per_candidate / t_extract:.1f}x slower"
    )
    labels = torch.as_tensor(dataset.labels[:, None], dtype=torch.float32)
    for name, net in _networks(settings).items():
        net.eval()

        def score(net=net) -> None:
            with torch.inference_mode():
                for start in range(0, n, args.batch):
                    net(patches[start : start + args.batch])

        score()
        t_score = _time(score, repeats=2)
        net.train()
        optimiser = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def train_step(net=net, optimiser=optimiser, batch_x=patches[:32], batch_y=labels[:32]) -> None:
            optimiser.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(net(batch_x), batch_y).backward()
            optimiser.step()

        train_step()
        t_train = _time(lambda: [train_step() for _ in range(args.train_steps)])
        entry = {
            "parameters": sum(p.numel() for p in net.parameters()),
            "scoring_candidates_per_s": n / t_score,
            "end_to_end_candidates_per_s": n / (t_score + t_extract),
            "training_samples_per_s": 32 * args.train_steps / t_train,
        }
        report[name] = entry
        print(
            f"{name:>10}: scoring {entry['scoring_candidates_per_s']:.0f} candidates/s, end to end "
            f"{entry['end_to_end_candidates_per_s']:.0f} candidates/s, training "
            f"{entry['training_samples_per_s']:.1f} samples/s ({entry['parameters']:,} parameters)"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    main()
