"""Measurements of the PET/CT classification bundle: speed, every backbone's results, in-project transfer.

Three sub-commands, each writing a JSON of what it measured (the figures in ``BENCHMARKS.md`` and the
bundle's ``docs/README.md`` come from these files):

- ``speed``: per backbone, training (forward + backward + step, batch 32 by default) and inference (eval
  forward, batch 64) slices per second on 96 x 96 three-channel slices with ``--threads`` threads, and the ratio to
  the peer baseline, MONAI's plain ``ResNet`` 18 measured in the same run; plus the time to load one
  embedded PET/CT study into slices (DICOM read, SUV, PET onto the CT grid, channels).
- ``backbones``: per backbone, ``monai.bundle run training`` on the built-in data then ``evaluating`` on
  its test split (same split, same budget for all), collecting per-slice and per-patient metrics with
  bootstrap CIs, the pointing game (strictly inside the lesion, within 10 mm, within one cell of the map
  CAM reads), training wall and CPU time.
- ``transfer``: the Res-SE Net pre-trained on the built-in training split (the ``backbones`` run's
  checkpoint, 18 patients) fine-tuned on a small task of new synthetic patients (3 training patients) with
  the first stages frozen, against the same network trained from scratch on that small task with the
  same budget; both evaluated on the small task's 12 test patients.
- ``table``: the Markdown table of the docs from the JSON files above (and the paper's reference row).

CPU time (user + sys of the child processes) is reported next to wall time: on a shared machine wall
time is inflated by the other jobs; on a quiet 2-core machine wall ~= (user + sys) / 2 for 2 threads.

Usage::

    python scripts/bench_petct.py speed --threads 2 --json outputs/petct/speed.json
    python scripts/bench_petct.py backbones --epochs 6 --samples 256 --out outputs/petct/runs
    python scripts/bench_petct.py transfer --out outputs/petct/runs
    python scripts/bench_petct.py table --speed outputs/petct/speed.json outputs/petct/runs/backbones.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "lung_petct_classification" / "configs"
BACKBONES = ("ressenet", "resnet18", "resnet34", "resnet50", "seresnet50", "densenet121", "efficientnet-b0")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _bundle(run_id: str, configs: list[str], overrides: list[str], log: Path, threads: int) -> dict:
    files = "[" + ",".join(f"'{CONFIGS / c}'" for c in configs) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", files, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cpu0, t0 = _children_cpu(), time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}); see {log}")
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def cam_cell_mm(
    backbone: str, size: int = 96, pixel_mm: float = 3.6, net_kwargs: dict | None = None
) -> float:
    """Side (mm) of one cell of the map CAM reads, for a ``size`` x ``size`` slice of ``pixel_mm`` pixels."""
    from monai.visualize import CAM

    from lungcad_transforms.networks.nets.cam_classifier import build_cam_classifier, cam_layers

    net = build_cam_classifier(backbone, in_channels=3, **(net_kwargs or {})).eval()
    target, fc = cam_layers(backbone)
    with torch.no_grad():
        cells = CAM(nn_module=net, target_layers=target, fc_layers=fc).feature_map_size((1, 3, size, size))[
            -1
        ]
    return size / cells * pixel_mm


def pointing_game(cams_csv: Path, tolerance_mm: float) -> dict:
    """Share of true-positive slices whose CAM peak is inside the lesion / within ``tolerance_mm`` of it.

    The peak is the argmax of the CAM upsampled to the input slice (MONAI's bilinear upsampler); the
    distance is from that pixel to the nearest lesion pixel (0 inside), as ``CAMSaver`` writes it.
    """
    with open(cams_csv, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["label"] == "1" and r.get("cam_peak_mm_from_lesion")]
    distances = [float(r["cam_peak_mm_from_lesion"]) for r in rows]
    share = (lambda limit: sum(d <= limit for d in distances) / len(distances)) if distances else None
    return {"n": len(distances), "inside": share(0.0) if share else None,
            "within_10mm": share(10.0) if share else None,
            "within_one_cell": share(tolerance_mm) if share else None}  # fmt: skip


def _summary(eval_dir: Path, backbone: str, net_kwargs: dict | None = None) -> dict:
    from lungcad_transforms.handlers.classification_report import PATIENT_LEVELS

    metrics = json.loads((eval_dir / "metrics.json").read_text())
    cam = json.loads((eval_dir / "cam" / "cam_summary.json").read_text())
    out = {}
    for level in PATIENT_LEVELS:
        m = metrics.get(level, {})
        out[level] = {k: m.get(k) for k in ("accuracy", "sensitivity", "specificity", "roc_auc", "confusion")}
        out[level]["ci95"] = m.get("ci95", {})
    out["pointing_game_cam"] = cam.get("pointing_game_cam")
    out["pointing_game_gradcam"] = cam.get("pointing_game_gradcam")
    out["true_positive_slices"] = cam.get("true_positive_slices")
    out["captum_max_abs_diff"] = cam.get("captum_max_abs_diff")
    out["cam_cell_mm"] = cam_cell_mm(backbone, net_kwargs=net_kwargs)
    out["pointing"] = pointing_game(eval_dir / "cam" / "cams.csv", out["cam_cell_mm"])
    return out


def _train_and_evaluate(
    name: str, backbone: str, root: Path, extra: list[str], args: argparse.Namespace
) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    common = ["--bundle_root", str(root), "--backbone", backbone, *extra]
    # one validation pass at the end unless asked otherwise: on 2 cores each pass costs as much as ~80 training slices
    budget = ["--epochs", str(args.epochs), "--samples_per_epoch", str(args.samples), "--batch_size",
              str(args.batch), "--val_interval", str(args.val_interval or args.epochs)]  # fmt: skip
    train = _bundle("training", ["train.json"], [*common, *budget], root / "train.log", args.threads)
    evaluate = _bundle(
        "evaluating", ["train.json", "evaluate.json"], common, root / "evaluate.log", args.threads
    )
    result = {"name": name, "backbone": backbone, "epochs": args.epochs, "samples_per_epoch": args.samples,
              "batch_size": args.batch, "threads": args.threads, "train": train, "evaluate": evaluate}  # fmt: skip
    net_kwargs = json.loads(args.net_kwargs) if getattr(args, "net_kwargs", None) else None
    if net_kwargs:
        result["net_kwargs"] = net_kwargs
    result.update(_summary(root / "eval", backbone, net_kwargs))
    print(
        json.dumps({k: result[k] for k in ("name", "train", "evaluate", "patient_majority", "pointing")}),
        flush=True,
    )
    return result


def _write_results(path: Path, results: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, path)


def _ensure_embedded(dataset_dir: str) -> str:
    """The bundle's embedded dataset written there first when it is the default folder and still absent.

    The bundle writes it itself only when ``dataset_dir`` is left at its default, not when it is given
    (as every run here gives it); on a fresh clone the folder is not there yet.
    """
    folder = Path(dataset_dir).resolve()
    default = (CONFIGS.parent / "data" / "petct").resolve()
    if folder == default and not (folder / "datalist.json").is_file():
        from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset

        settings = json.loads((CONFIGS / "train.json").read_text(encoding="utf-8"))["embedded_data"]
        ensure_petct_dataset(folder, **settings)
    return str(folder)


def cmd_backbones(args: argparse.Namespace) -> None:
    data = ["--dataset_dir", _ensure_embedded(args.dataset_dir)]
    if args.net_kwargs:
        data += ["--net_kwargs", args.net_kwargs]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for backbone in args.backbones:
        name, folder = (
            (f"{backbone} ({args.tag})", f"{backbone}_{args.tag}") if args.tag else (backbone, backbone)
        )
        results.append(_train_and_evaluate(name, backbone, out / folder, data, args))
        _write_results(out / "backbones.json", results)


def cmd_transfer(args: argparse.Namespace) -> None:
    from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset

    out = Path(args.out)
    small = ensure_petct_dataset(out / "small_task", n_train=3, n_val=3, n_test=12, seed=9000)
    pretrained = out / "ressenet" / "models" / "model.pt"
    if not pretrained.is_file():
        raise SystemExit(f"{pretrained} missing: run the backbones sub-command (with ressenet) first")
    data = ["--dataset_dir", small]
    finetune = [*data, "--pretrained_checkpoint", str(pretrained), "--freeze_stages", str(args.freeze)]
    results = [
        _train_and_evaluate("small task, from scratch", "ressenet", out / "transfer_scratch", data, args),
        _train_and_evaluate(
            f"small task, fine-tuned from the built-in pre-training, {args.freeze} stages frozen",
            "ressenet",
            out / "transfer_finetune",
            finetune,
            args,
        ),  # fmt: skip
    ]
    _write_results(out / "transfer.json", results)


def _rate(step, n_items: int, repeats: int) -> tuple[float, float]:
    """Items per second of wall time and per second of CPU time (all threads) over ``repeats`` calls."""
    step()  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(repeats):
        step()
    return repeats * n_items / (time.perf_counter() - t0), repeats * n_items / (time.process_time() - c0)


def cmd_speed(args: argparse.Namespace) -> None:
    from monai.networks.nets import ResNet
    from monai.networks.nets.resnet import get_inplanes

    from lungcad_transforms.networks.nets.cam_classifier import build_cam_classifier

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    networks = {"peer: MONAI ResNet (18, plain)": ResNet("basic", [2, 2, 2, 2], get_inplanes(), spatial_dims=2,
                                                          n_input_channels=3, num_classes=2)}  # fmt: skip
    networks.update({b: build_cam_classifier(b, in_channels=3) for b in args.backbones})
    x_train, y_train = torch.rand(args.train_batch, 3, 96, 96), torch.randint(0, 2, (args.train_batch,))
    x_infer = torch.rand(args.infer_batch, 3, 96, 96)
    loss = torch.nn.CrossEntropyLoss()
    rows = {}
    for name, net in networks.items():
        opt = torch.optim.AdamW(net.parameters(), 1e-3)

        def train_step(net=net, opt=opt):
            net.train()
            opt.zero_grad()
            loss(net(x_train), y_train).backward()
            opt.step()

        def infer_step(net=net):
            net.eval()
            with torch.no_grad():
                net(x_infer)

        train_wall, train_cpu = _rate(train_step, args.train_batch, args.repeats)
        infer_wall, infer_cpu = _rate(infer_step, args.infer_batch, args.repeats)
        # a quiet machine with `threads` cores does `threads` CPU-seconds per second (at best)
        rows[name] = {"train_slices_per_s": train_wall, "inference_slices_per_s": infer_wall,
                      "train_slices_per_cpu_s": train_cpu, "inference_slices_per_cpu_s": infer_cpu,
                      "train_slices_per_s_quiet": train_cpu * args.threads,
                      "inference_slices_per_s_quiet": infer_cpu * args.threads,
                      "parameters": sum(p.numel() for p in net.parameters())}  # fmt: skip
        print(name, rows[name], flush=True)
    peer = rows["peer: MONAI ResNet (18, plain)"]
    for row in rows.values():
        row["train_ratio_to_peer"] = row["train_slices_per_s"] / peer["train_slices_per_s"]
        row["inference_ratio_to_peer"] = row["inference_slices_per_s"] / peer["inference_slices_per_s"]
    load = None
    if args.dataset_dir:
        from lungcad_transforms.apps.petct.slice_dataset import PETCTSliceDataset, read_petct_datalist

        entries = read_petct_datalist(Path(_ensure_embedded(args.dataset_dir)) / "datalist.json", "test")[
            : args.studies
        ]
        t0 = time.perf_counter()
        ds = PETCTSliceDataset(entries)
        load = {
            "studies": len(entries),
            "slices": len(ds),
            "seconds_per_study": (time.perf_counter() - t0) / len(entries),
        }
        print("loading", load, flush=True)
    out = {"threads": args.threads, "load_average": os.getloadavg(), "input": [3, 96, 96], "train_batch": args.train_batch, "infer_batch": args.infer_batch, "networks": rows, "study_loading": load,
           "torch": torch.__version__, "cpu_count": os.cpu_count()}  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))


PAPER_ROW = ("| **paper** (Karimpour et al. 2025, Res-SE Net, NSCLC, their data; from the paper, not measured "
             "here) | 91.7 % | | | | | | | | | |")  # fmt: skip


def _fmt(level: dict, name: str, digits: int = 3) -> str:
    value, ci = level.get(name), level.get("ci95", {}).get(name)
    if value is None:
        return "n/a"
    if ci and ci[0] is not None and ci[1] is not None:
        return f"{value:.{digits}f} [{ci[0]:.2f}, {ci[1]:.2f}]"
    return f"{value:.{digits}f}"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def table_rows(results: list[dict], speed: dict | None = None) -> list[str]:
    """Markdown rows (header, separator, paper row, one row per result) of the docs' results table."""
    rows = ["| run | patient accuracy (majority vote) | patient sensitivity / specificity (majority) "
            "| patient ROC-AUC (vote share) | patient ROC-AUC (mean probability) | slice accuracy "
            "| slice sensitivity / specificity | slice ROC-AUC | pointing game CAM: inside / 10 mm / one cell "
            "| train CPU s (wall s) | train / inference slices per s, 2 cores |",
            "|---|---|---|---|---|---|---|---|---|---|---|", PAPER_ROW]  # fmt: skip
    networks = (speed or {}).get("networks", {})
    for r in results:
        pm, mean, sl, pg = r["patient_majority"], r["patient_mean"], r["slice"], r.get("pointing", {})
        pointing = "no true positive" if not pg.get("n") else (
            f"{_share(pg['inside'])} / {_share(pg['within_10mm'])} / {_share(pg['within_one_cell'])} "
            f"(n={pg['n']}, cell {r['cam_cell_mm']:.1f} mm)")  # fmt: skip
        rate = networks.get(r.get("backbone", r["name"]))
        rates = "n/a" if rate is None else (f"{rate['train_slices_per_s_quiet']:.1f} / "
                                            f"{rate['inference_slices_per_s_quiet']:.1f}")  # fmt: skip
        rows.append(
            f"| {r['name']} | {_fmt(pm, 'accuracy')} | {_fmt(pm, 'sensitivity', 2)} / {_fmt(pm, 'specificity', 2)} "
            f"| {_fmt(pm, 'roc_auc')} | {_fmt(mean, 'roc_auc')} | {_fmt(sl, 'accuracy')} "
            f"| {_fmt(sl, 'sensitivity', 2)} / {_fmt(sl, 'specificity', 2)} | {_fmt(sl, 'roc_auc')} | {pointing} "
            f"| {r['train']['cpu_s']:.0f} ({r['train']['wall_s']:.0f}) | {rates} |"
        )  # fmt: skip
    return rows


def cmd_table(args: argparse.Namespace) -> None:
    """Print the Markdown table of every results JSON given (backbones.json / transfer.json)."""
    speed = json.loads(Path(args.speed).read_text()) if args.speed else None
    results = [r for path in args.files for r in json.loads(Path(path).read_text())]
    print("\n".join(table_rows(results, speed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--threads", type=int, default=2)
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--train_batch", type=int, default=16)
    speed.add_argument("--infer_batch", type=int, default=32)
    speed.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    speed.add_argument("--dataset_dir", default=str(REPO / "bundles/lung_petct_classification/data/petct"))
    speed.add_argument("--studies", type=int, default=3)
    speed.add_argument("--json", default="outputs/petct/speed.json")
    for name in ("backbones", "transfer"):
        p = sub.add_parser(name)
        p.add_argument("--out", default="outputs/petct/runs")
        p.add_argument("--epochs", type=int, default=6)
        p.add_argument("--samples", type=int, default=256)
        p.add_argument(
            "--val_interval", type=int, default=0, help="epochs between validations (0: at the end)"
        )
        p.add_argument("--threads", type=int, default=1, help="torch threads of each bundle run")
        p.add_argument("--dataset_dir", default=str(REPO / "bundles/lung_petct_classification/data/petct"))
        p.add_argument("--backbones", nargs="+", default=list(BACKBONES))
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--freeze", type=int, default=2)
        p.add_argument("--net_kwargs", default=None, help="JSON options of the network (backbones only)")
        p.add_argument("--tag", default="", help="run name suffix and folder suffix (backbones only)")
    table = sub.add_parser("table")
    table.add_argument("files", nargs="+")
    table.add_argument("--speed", default=None, help="the speed sub-command's JSON (slices per second)")
    args = parser.parse_args()
    {"speed": cmd_speed, "backbones": cmd_backbones, "transfer": cmd_transfer, "table": cmd_table}[
        args.command
    ](args)


if __name__ == "__main__":
    main()
