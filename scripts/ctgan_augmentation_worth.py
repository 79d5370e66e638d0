"""Worth of CT-GAN positives as augmentation: FP-reduction CPM with vs without them, same budget, several seeds.

For each fraction of the real training positives kept (default 100 % and 25 %) and each seed, the
FP-reduction bundle is trained twice with the same budget (epochs x samples_per_epoch, same sampler, same
network): once as it is (``train.json`` + the network overlay), once with ``--gan_augment true`` (GAN nodules
injected into the training scans). Each model is evaluated with the bundle's
``evaluate.json`` on the held-out test split (LUNA16 CPM with its 95 % bootstrap interval over the
scans). The difference of the arms is summarised as the mean over seeds with a paired bootstrap
interval over the test scans (the same draws of scans for every run). Results go to ``--out``
(``worth.json``, one folder per run); a markdown table is printed.

Example (2 CPU cores, about 40 min): ``python scripts/ctgan_augmentation_worth.py --out outputs/ctgan_worth``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FP = REPO / "bundles" / "lung_nodule_ct_fp_reduction"
CONFIGS = FP / "configs"

__all__ = ["main"]

_CONFIG_DIR = [CONFIGS]  # the FP bundle's configs the runs use (--fp_configs: a frozen copy)


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _bundle(
    configs: list[str], overrides: list[str], log: Path, run_id: str | None = None
) -> dict[str, float]:
    files = "[" + ",".join(f"'{_CONFIG_DIR[0] / c}'" for c in configs) + "]"
    cmd = [
        sys.executable,
        "-m",
        "monai.bundle",
        "run",
        *([run_id] if run_id else []),
        "--config_file",
        files,
        *overrides,
    ]
    cpu, wall = _child_cpu(), time.perf_counter()
    with open(log, "w") as fh:
        result = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)}; see {log}")
    return {"wall_s": time.perf_counter() - wall, "cpu_s": _child_cpu() - cpu}


def _subset_candidates(dataset: Path, fraction: float, seed: int, out: Path) -> tuple[Path, int, int]:
    """Candidates with the positives of only ``fraction`` of the training nodules (test / validation as they are)."""
    from lungcad_transforms.data.tables import read_annotations, read_candidates, write_candidates_csv

    datalist = json.loads((dataset / "datalist.json").read_text())
    train_uids = {e["seriesuid"] for e in datalist["training"]}
    nodules = [a for a in read_annotations(dataset / "annotations.csv") if a["seriesuid"] in train_uids]
    rng = np.random.default_rng(1000 + seed)
    keep = set(rng.choice(len(nodules), size=max(1, round(fraction * len(nodules))), replace=False).tolist())
    rows = read_candidates(dataset / "candidates.csv")
    kept = []
    for row in rows:
        if row["class"] == 1 and row["seriesuid"] in train_uids:
            # the nodule this positive was jittered from: the nearest annotated one in its scan
            same = [(i, a) for i, a in enumerate(nodules) if a["seriesuid"] == row["seriesuid"]]
            d = [np.linalg.norm([row[k] - a[k] for k in ("coordX", "coordY", "coordZ")]) for _, a in same]
            if same[int(np.argmin(d))][0] not in keep:
                continue
        kept.append(row)
    write_candidates_csv(kept, out)
    positives = sum(1 for r in kept if r["class"] == 1 and r["seriesuid"] in train_uids)
    return out, len(keep), positives


def _paired_bootstrap(runs: list[dict[str, Any]], annotations: Path, test_uids: list[str], n: int) -> dict:
    """Bootstrap over test scans (one set of draws for all runs): CPM difference of the seed-mean arms."""
    from lungcad_transforms.data.tables import read_annotations, read_candidates
    from lungcad_transforms.metrics.froc import froc_score

    ann = [a for a in read_annotations(annotations) if a["seriesuid"] in set(test_uids)]
    results = {r["name"]: read_candidates(Path(r["eval_dir"]) / "results.csv") for r in runs}
    rng = np.random.default_rng(0)
    diffs = []
    for _ in range(n):
        draw = rng.integers(0, len(test_uids), len(test_uids))
        uids = [f"{test_uids[j]}#{k}" for k, j in enumerate(draw)]  # a scan drawn twice counts twice
        by_scan: dict[str, list[str]] = {}
        for new, j in zip(uids, draw, strict=True):
            by_scan.setdefault(test_uids[j], []).append(new)
        a_draw = [{**a, "seriesuid": new} for a in ann for new in by_scan.get(a["seriesuid"], [])]
        if not a_draw:
            continue
        cpm: dict[str, list[float]] = {"gan": [], "real": []}
        for r in runs:
            res = [
                {**c, "seriesuid": new} for c in results[r["name"]] for new in by_scan.get(c["seriesuid"], [])
            ]
            cpm[r["arm"]].append(froc_score(a_draw, res, uids).cpm)
        diffs.append(np.mean(cpm["gan"]) - np.mean(cpm["real"]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {
        "ci95": [float(lo), float(hi)],
        "n_bootstrap": len(diffs),
        "p_gan_better": float(np.mean(np.array(diffs) > 0)),
    }


def _one_run(
    name: str,
    arm: str,
    fraction: float,
    seed: int,
    candidates: Path,
    dataset: Path,
    out: Path,
    cache: Path,
    network: list[str],
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Train one FP model (with or without GAN positives) and evaluate it on the test split."""
    root = out / name
    root.mkdir(exist_ok=True)
    common = ["--dataset_dir", str(dataset), "--bundle_root", str(root), "--patch_cache_dir", str(cache),
              "--candidates_file", str(candidates), "--seed", str(seed)]  # fmt: skip
    configs = ["train.json", *network]
    gan = (["--gan_augment", "true", "--gan_bundle_dir", args.gan_bundle_dir,
            "--gan_positives_dir", str(out / f"gan_positives_seed{seed}"),
            "--gan_positives#per_scan", str(args.gan_per_scan)] if arm == "gan" else [])  # fmt: skip
    marker = root / "train_resources.json"  # a finished training is kept when a run is resumed
    if marker.is_file() and any((root / "models").rglob("model.pt")):
        train = json.loads(marker.read_text())
    else:
        train = _bundle(configs, common + gan + args.extra, root / "train.log", "training")
        marker.write_text(json.dumps(train) + "\n")
    eval_dir = root / "eval_test"
    ev = _bundle(["train.json", "evaluate.json", *network], common + ["--output_dir", str(eval_dir),
                 "--gradcam_max_candidates", "0"], root / "evaluate.log")  # fmt: skip
    froc = json.loads((eval_dir / "froc.json").read_text())
    print(f"{name}: CPM {froc['cpm']:.3f} {froc['cpm_ci']} train {train.get('wall_s')} s wall "
          f"{train.get('cpu_s')} s CPU", flush=True)  # fmt: skip
    return {"name": name, "fraction": fraction, "seed": seed, "arm": arm, "eval_dir": str(eval_dir),
            "cpm": froc["cpm"], "cpm_ci": froc["cpm_ci"], "auc": froc["auc"],
            "sensitivities": froc["sensitivities"], "train": train, "evaluate": ev}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/ctgan_worth")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument(
        "--network", default="small3dcnn.json", help="network overlay of the FP bundle ('' = MGI-CNN)"
    )
    parser.add_argument("--gan_bundle_dir", default=str(REPO / "bundles" / "lung_nodule_ct_gan"))
    parser.add_argument("--gan_per_scan", type=int, default=3)
    parser.add_argument(
        "--arms", nargs="+", default=["real", "gan"], help="runs to do now (finished runs are kept)"
    )
    parser.add_argument("--n_bootstrap", type=int, default=1000)
    parser.add_argument(
        "--patch_cache", default=None, help="patch cache folder shared by the runs (default OUT/patch_cache)"
    )
    parser.add_argument(
        "--extra", nargs=argparse.REMAINDER, default=[], help="more overrides for every training run"
    )
    parser.add_argument(
        "--fp_configs", default=str(CONFIGS), help="folder of the FP bundle's configs (e.g. a frozen copy)"
    )
    parser.add_argument(
        "--dataset_dir", default=str(FP / "data" / "phantoms"), help="the FP phantom dataset (made if absent)"
    )
    args = parser.parse_args(argv)
    _CONFIG_DIR[0] = Path(args.fp_configs).resolve()

    from monai.bundle import ConfigParser

    from lungcad_transforms.apps.detection import ensure_fp_dataset

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    embedded = ConfigParser.load_config_file(str(_CONFIG_DIR[0] / "train.json"))["embedded_data"]
    dataset = Path(ensure_fp_dataset(args.dataset_dir, **embedded))
    datalist = json.loads((dataset / "datalist.json").read_text())
    test_uids = [e["seriesuid"] for e in datalist["test"]]
    network = [args.network] if args.network else []
    cache = Path(args.patch_cache).resolve() if args.patch_cache else out / "patch_cache"
    runs: list[dict[str, Any]] = []
    summary_file = out / "worth.json"
    done = (
        {r["name"]: r for r in json.loads(summary_file.read_text())["runs"]} if summary_file.is_file() else {}
    )
    # paired runs: per fraction and seed, without then with GAN positives (same candidates, same seed)
    for fraction in args.fractions:
        for seed in args.seeds:
            for arm in args.arms:
                name = f"frac{fraction:g}_seed{seed}_{arm}"
                if name in done:
                    runs.append(done[name])
                    continue
                candidates, n_nodules, n_pos = (
                    _subset_candidates(
                        dataset, fraction, seed, out / f"candidates_{fraction:g}_seed{seed}.csv"
                    )
                    if fraction < 1
                    else (dataset / "candidates.csv", None, None)
                )
                runs.append(
                    _one_run(name, arm, fraction, seed, candidates, dataset, out, cache, network, args)
                )
                runs[-1].update(real_nodules_kept=n_nodules, real_positive_candidates=n_pos)
                summary_file.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    if set(args.arms) != {"real", "gan"} and not all(a in {r["arm"] for r in runs} for a in ("real", "gan")):
        return {"runs": runs}  # one arm only so far: compared once the other is done
    comparisons = {}
    for fraction in args.fractions:
        group = [r for r in runs if r["fraction"] == fraction]
        real = [r["cpm"] for r in group if r["arm"] == "real"]
        gan = [r["cpm"] for r in group if r["arm"] == "gan"]
        comparisons[f"{fraction:g}"] = {
            "real_cpm_mean": float(np.mean(real)), "real_cpm_sd": float(np.std(real, ddof=1)) if len(real) > 1 else 0.0,
            "gan_cpm_mean": float(np.mean(gan)), "gan_cpm_sd": float(np.std(gan, ddof=1)) if len(gan) > 1 else 0.0,
            "difference": float(np.mean(gan) - np.mean(real)),
            "paired_bootstrap": _paired_bootstrap(group, dataset / "annotations.csv", test_uids, args.n_bootstrap),
        }  # fmt: skip
    summary = {"runs": runs, "comparisons": comparisons, "dataset": str(dataset), "network": args.network,
               "gan_per_scan": args.gan_per_scan, "cpu_s_total": sum((r["train"].get("cpu_s") or 0) + r["evaluate"]["cpu_s"] for r in runs)}  # fmt: skip
    summary_file.write_text(json.dumps(summary, indent=1) + "\n")
    print("| real positives | seed | CPM without GAN (95 % CI) | CPM with GAN (95 % CI) |\n|---|---|---|---|")
    for fraction in args.fractions:
        for seed in args.seeds:
            pair = {r["arm"]: r for r in runs if r["fraction"] == fraction and r["seed"] == seed}
            cell = {
                a: f"{pair[a]['cpm']:.3f} ({pair[a]['cpm_ci'][0]:.3f}-{pair[a]['cpm_ci'][1]:.3f})"
                for a in pair
            }
            print(f"| {fraction:.0%} | {seed} | {cell['real']} | {cell['gan']} |")
    for fraction, c in comparisons.items():
        b = c["paired_bootstrap"]
        print(f"{float(fraction):.0%}: mean CPM {c['real_cpm_mean']:.3f} +- {c['real_cpm_sd']:.3f} without, "
              f"{c['gan_cpm_mean']:.3f} +- {c['gan_cpm_sd']:.3f} with GAN; difference {c['difference']:+.3f} "
              f"(paired bootstrap 95 % CI {b['ci95'][0]:+.3f} to {b['ci95'][1]:+.3f})")  # fmt: skip
    return summary


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
