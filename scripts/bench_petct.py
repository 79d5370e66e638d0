"""Measurements of the PET/CT classification bundle: speed, every backbone's results, in-project transfer.

Three sub-commands, each writing a JSON of what it measured (the figures in ``BENCHMARKS.md`` and the
bundle's ``docs/README.md`` come from these files):

- ``speed``: per backbone, training (forward + backward + step, batch 32 by default) and inference (eval
  forward, batch 64) slices per second on 96 x 96 three-channel slices with ``--threads`` threads, and the ratio to
  the peer baseline, MONAI's plain ``ResNet`` 18 measured in the same run; plus the time to load one
  embedded PET/CT study into slices (DICOM read, SUV, PET onto the CT grid, channels).
- ``backbones``: per backbone, ``monai.bundle run training`` on the built-in data then ``evaluating`` on
  its test split (same split, same budget for all), collecting per-slice and per-patient metrics with
  bootstrap CIs, the pointing game, training wall and CPU time.
- ``transfer``: the Res-SE Net pre-trained on the built-in training split (the ``backbones`` run's
  checkpoint) fine-tuned on a small task of new synthetic patients (3 training patients) with the first
  stages frozen, against the same network trained from scratch on that small task; both evaluated on the
  small task's 12 test patients.

CPU time (user + sys of the child processes) is reported next to wall time: on a shared machine wall
time is inflated by the other jobs; on a quiet 2-core machine wall ~= (user + sys) / 2 for 2 threads.

Usage::

    python scripts/bench_petct.py speed --threads 2 --json outputs/petct/speed.json
    python scripts/bench_petct.py backbones --epochs 6 --samples 256 --out outputs/petct/runs
    python scripts/bench_petct.py transfer --out outputs/petct/runs
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

import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "bundles" / "lung_petct_classification" / "configs"
BACKBONES = ("ressenet", "resnet18", "resnet34", "resnet50", "seresnet50", "densenet121", "efficientnet-b0")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _bundle(run_id: str, configs: list[str], overrides: list[str], log: Path) -> dict:
    files = "[" + ",".join(f"'{CONFIGS / c}'" for c in configs) + "]"
    cmd = [sys.executable, "-m", "monai.bundle", "run", run_id, "--config_file", files, *overrides]
    cpu0, t0 = _children_cpu(), time.perf_counter()
    with open(log, "w", encoding="utf-8") as fh:
        rc = subprocess.run(
            cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ)
        ).returncode
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    if rc != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({rc}); see {log}")
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def _summary(eval_dir: Path) -> dict:
    metrics = json.loads((eval_dir / "metrics.json").read_text())
    cam = json.loads((eval_dir / "cam" / "cam_summary.json").read_text())
    out = {}
    for level in ("slice", "patient_majority", "patient_mean"):
        m = metrics.get(level, {})
        out[level] = {k: m.get(k) for k in ("accuracy", "sensitivity", "specificity", "roc_auc", "confusion")}
        out[level]["ci95"] = m.get("ci95", {})
    out["pointing_game_cam"] = cam.get("pointing_game_cam")
    out["pointing_game_gradcam"] = cam.get("pointing_game_gradcam")
    out["true_positive_slices"] = cam.get("true_positive_slices")
    out["captum_max_abs_diff"] = cam.get("captum_max_abs_diff")
    return out


def _train_and_evaluate(
    name: str, root: Path, extra: list[str], epochs: int, samples: int, batch: int
) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    common = ["--bundle_root", str(root), *extra]
    budget = ["--epochs", str(epochs), "--samples_per_epoch", str(samples), "--batch_size", str(batch)]
    train = _bundle("training", ["train.json"], [*common, *budget], root / "train.log")
    evaluate = _bundle("evaluating", ["train.json", "evaluate.json"], common, root / "evaluate.log")
    result = {
        "name": name,
        "epochs": epochs,
        "samples_per_epoch": samples,
        "train": train,
        "evaluate": evaluate,
    }
    result.update(_summary(root / "eval"))
    print(
        json.dumps({k: result[k] for k in ("name", "train", "patient_majority", "pointing_game_cam")}),
        flush=True,
    )
    return result


def cmd_backbones(args: argparse.Namespace) -> None:
    data = ["--dataset_dir", str(Path(args.dataset_dir).resolve()), "--val_interval", "1"]
    results = []
    for backbone in args.backbones:
        root = Path(args.out) / backbone
        results.append(
            _train_and_evaluate(
                backbone, root, ["--backbone", backbone, *data], args.epochs, args.samples, args.batch
            )
        )
        Path(args.out, "backbones.json").write_text(json.dumps(results, indent=2))


def cmd_transfer(args: argparse.Namespace) -> None:
    from lungcad_transforms.apps.petct.phantom_studies import ensure_petct_dataset

    small = ensure_petct_dataset(Path(args.out) / "small_task", n_train=3, n_val=3, n_test=12, seed=9000)
    pretrained = Path(args.out) / "ressenet" / "models" / "model.pt"
    if not pretrained.is_file():
        raise SystemExit(f"{pretrained} missing: run the backbones sub-command (with ressenet) first")
    data = ["--backbone", "ressenet", "--dataset_dir", small]
    results = [
        _train_and_evaluate(
            "scratch", Path(args.out) / "transfer_scratch", data, args.epochs, args.samples, args.batch
        ),
        _train_and_evaluate(
            f"fine-tuned, {args.freeze} stages frozen",
            Path(args.out) / "transfer_finetune",
            [*data, "--pretrained_checkpoint", str(pretrained), "--freeze_stages", str(args.freeze)],
            args.epochs,
            args.samples,
            args.batch,
        ),
    ]
    Path(args.out, "transfer.json").write_text(json.dumps(results, indent=2))


def _rate(step, n_items: int, repeats: int) -> float:
    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        step()
    return repeats * n_items / (time.perf_counter() - t0)


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

        rows[name] = {"train_slices_per_s": _rate(train_step, args.train_batch, args.repeats),
                      "inference_slices_per_s": _rate(infer_step, args.infer_batch, args.repeats),
                      "parameters": sum(p.numel() for p in net.parameters())}  # fmt: skip
        print(name, rows[name], flush=True)
    peer = rows["peer: MONAI ResNet (18, plain)"]
    for row in rows.values():
        row["train_ratio_to_peer"] = row["train_slices_per_s"] / peer["train_slices_per_s"]
        row["inference_ratio_to_peer"] = row["inference_slices_per_s"] / peer["inference_slices_per_s"]
    load = None
    if args.dataset_dir:
        from lungcad_transforms.apps.petct.slice_dataset import PETCTSliceDataset, read_petct_datalist

        entries = read_petct_datalist(Path(args.dataset_dir) / "datalist.json", "test")[: args.studies]
        t0 = time.perf_counter()
        ds = PETCTSliceDataset(entries)
        load = {
            "studies": len(entries),
            "slices": len(ds),
            "seconds_per_study": (time.perf_counter() - t0) / len(entries),
        }
        print("loading", load, flush=True)
    out = {"threads": args.threads, "input": [3, 96, 96], "train_batch": args.train_batch, "infer_batch": args.infer_batch, "networks": rows, "study_loading": load,
           "torch": torch.__version__, "cpu_count": os.cpu_count()}  # fmt: skip
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=2))


def _fmt(level: dict, name: str) -> str:
    value, ci = level.get(name), level.get("ci95", {}).get(name)
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]" if ci and ci[0] is not None else f"{value:.3f}"


def cmd_table(args: argparse.Namespace) -> None:
    """Markdown rows of every results JSON given (backbones.json / transfer.json)."""
    print("| run | patient accuracy (majority) | sensitivity | specificity | patient ROC-AUC (mean prob.) "
          "| slice ROC-AUC | pointing game CAM / Grad-CAM | train wall / CPU s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for path in args.files:
        for r in json.loads(Path(path).read_text()):
            pm, mean, sl = r["patient_majority"], r["patient_mean"], r["slice"]
            pg = [r.get("pointing_game_cam"), r.get("pointing_game_gradcam")]
            pg_text = (
                " / ".join("n/a" if v is None else f"{v:.0%}" for v in pg)
                + f" (n={r.get('true_positive_slices')})"
            )
            print(f"| {r['name']} | {_fmt(pm, 'accuracy')} | {_fmt(pm, 'sensitivity')} | {_fmt(pm, 'specificity')} "
                  f"| {_fmt(mean, 'roc_auc')} | {_fmt(sl, 'roc_auc')} | {pg_text} "
                  f"| {r['train']['wall_s']:.0f} / {r['train']['cpu_s']:.0f} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    speed = sub.add_parser("speed")
    speed.add_argument("--threads", type=int, default=2)
    speed.add_argument("--repeats", type=int, default=3)
    speed.add_argument("--train_batch", type=int, default=32)
    speed.add_argument("--infer_batch", type=int, default=64)
    speed.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    speed.add_argument("--dataset_dir", default=str(REPO / "bundles/lung_petct_classification/data/petct"))
    speed.add_argument("--studies", type=int, default=3)
    speed.add_argument("--json", default="outputs/petct/speed.json")
    for name in ("backbones", "transfer"):
        p = sub.add_parser(name)
        p.add_argument("--out", default="outputs/petct/runs")
        p.add_argument("--epochs", type=int, default=6)
        p.add_argument("--samples", type=int, default=256)
        p.add_argument("--dataset_dir", default=str(REPO / "bundles/lung_petct_classification/data/petct"))
        p.add_argument("--backbones", nargs="+", default=list(BACKBONES))
        p.add_argument("--batch", type=int, default=8)
        p.add_argument("--freeze", type=int, default=2)
    table = sub.add_parser("table")
    table.add_argument("files", nargs="+")
    args = parser.parse_args()
    {"speed": cmd_speed, "backbones": cmd_backbones, "transfer": cmd_transfer, "table": cmd_table}[
        args.command
    ](args)


if __name__ == "__main__":
    main()
