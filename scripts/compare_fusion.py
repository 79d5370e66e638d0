"""Train and test the MR/PET classifier in its three modes (MR, PET, MR+PET) on one patient split, over
several seeds, and write the comparison the study claims, with its uncertainty.

Every run is the bundle's own workflow (``configs/train.json`` then ``configs/evaluate.json``, in this
process); the patients are loaded and aligned once and each mode takes its channels of them (the MR and
PET channels are normalised independently, so this equals loading per mode). Writes to ``--out``:

- ``results.md`` / ``results.json``: per mode, patient-level accuracy, precision, recall (sensitivity),
  specificity and ROC-AUC of the seed-averaged probabilities with 95 % bootstrap CIs over patients, the
  per-seed AUCs, slice-level AUC (patient-clustered bootstrap), and the paired bootstrap test of the AUC
  difference MR+PET vs MR and vs PET;
- ``confusion_<mode>.png`` (patient level) and ``roc.png`` (the three modes).

    python scripts/compare_fusion.py                               # the default study (PRESETS["study"])
    python scripts/compare_fusion.py --preset tiny --out /tmp/c    # a minute-long smoke run
    python scripts/compare_fusion.py --preset bundle --out /tmp/c  # train.json as it is (hours on a CPU)

The default study is the bundle's ResNet34 (depth 3-4-6-3) at an eighth of its width on 4.5 mm slices of
64 x 64: sized to about 10-15 CPU-minutes in all on one thread, where the bundle's own settings take hours.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "chest_mr_pet_fusion_classification"
MODES = ("mr", "pet", "mr_pet")
CHANNELS = {"mr": [0], "pet": [1], "mr_pet": [0, 1]}
# bundle overrides per preset; the misaligned set is not used here, so none is made
PRESETS: dict[str, dict[str, Any]] = {
    # 24 / 8 / 24 patients of 16 slices, ResNet34 depth at 1/8 width, 24 epochs of batch 16: ~10 CPU-minutes
    # for the 3 x 3 runs (at 1/4 width, lr 3e-4, batch 32 and 10 epochs the training loss did not fall)
    "study": {
        "embedded_data": {"n_train": 24, "n_val": 8, "n_test": 24, "n_misaligned": 0, "mr_shape": [64, 64, 16],
                          "mr_spacing": [4.5, 4.5, 6.0], "pet_shape": [48, 48, 16]},
        "input_spacing": [4.5, 4.5], "input_size": [64, 64], "crop_size": [56, 56],
        "network_def#block_inplanes": [8, 16, 32, 64], "epochs": 24, "batch_size": 16, "learning_rate": 0.001,
    },
    # checks the script end to end in about a minute; its figures are not a study
    "tiny": {
        "embedded_data": {"n_train": 4, "n_val": 4, "n_test": 4, "n_misaligned": 0, "mr_shape": [48, 48, 12],
                          "mr_spacing": [6.0, 6.0, 8.0], "pet_shape": [24, 24, 12]},
        "input_spacing": [6.0, 6.0], "input_size": [48, 48], "crop_size": [40, 40],
        "network_def#block_inplanes": [4, 8, 16, 32], "epochs": 1,
    },
    "bundle": {},
}  # fmt: skip


def _cpu_seconds() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _configs(names: list[str]) -> list[str]:
    return [str(BUNDLE / "configs" / n) for n in names]


def _channel_view(dataset: Any, mode: str) -> Any:
    """A copy of an MR+PET slice dataset whose images hold only ``mode``'s channels."""
    view = copy.copy(dataset)
    view.items = [dict(item, image=item["image"][CHANNELS[mode]]) for item in dataset.items]
    return view


def _datasets(root: Path, overrides: dict[str, Any], split: str) -> dict[str, Any]:
    """Train, validation and ``split`` datasets of mode mr_pet, built by the bundle's config."""
    from monai.bundle import ConfigWorkflow

    data = {}
    for configs, names in (
        (["train.json"], ("train", "validation")),
        (["train.json", "evaluate.json"], ("test",)),
    ):
        wf = ConfigWorkflow(config_file=_configs(configs), workflow_type="train", bundle_root=str(root), mode="mr_pet",
                            eval_split=split, **overrides)  # fmt: skip
        wf.initialize()  # creates the embedded data when needed
        ids = {"train": "train#dataset", "validation": "validate#dataset", "test": "validate#dataset"}
        data.update({name: wf.parser.get_parsed_content(ids[name]) for name in names})
    return data


def _run_mode(
    root: Path, mode: str, seed: int, data: dict[str, Any], overrides: dict[str, Any], gradcam: int
) -> dict:
    from monai.bundle import ConfigWorkflow

    run_root = root / f"seed{seed}"
    common = dict(bundle_root=str(run_root), mode=mode, seed=seed, use_embedded_data=False, **overrides)
    common["embedded_data_dir"] = str(root / "data" / "phantoms")
    train = ConfigWorkflow(config_file=_configs(["train.json"]), workflow_type="train", **common,
                           **{"train#dataset": _channel_view(data["train"], mode),
                              "validate#dataset": _channel_view(data["validation"], mode)})  # fmt: skip
    train.initialize()
    train.run()
    train.finalize()
    test = ConfigWorkflow(config_file=_configs(["train.json", "evaluate.json"]), workflow_type="eval", **common,
                          gradcam_patients=gradcam, **{"validate#dataset": _channel_view(data["test"], mode)})  # fmt: skip
    test.initialize()
    test.run()
    test.finalize()
    writer = test.parser.get_parsed_content("validate#handlers")[-1]
    probs = np.array([writer.scores[i] for i in range(len(data["test"]))])
    return {"probs": probs, "metrics": writer.metrics}


def _summary(labels, probs, groups, n_boot: int, seed: int) -> dict[str, Any]:
    from lungcad_transforms.metrics.classification import binary_classification_report, bootstrap_ci

    report = binary_classification_report(labels, probs)
    out = {
        k: report[k]
        for k in ("accuracy", "precision", "recall", "specificity", "roc_auc", "confusion", "n", "n_positive")
    }
    for metric in ("accuracy", "precision", "recall", "specificity", "roc_auc"):
        out[f"{metric}_ci"] = list(bootstrap_ci(labels, probs, metric, n_boot, seed, groups=groups))
    return out


def _fmt(value: float, ci: list[float] | None = None) -> str:
    text = "n/a" if value is None or not np.isfinite(value) else f"{value:.3f}"
    if ci is not None and all(np.isfinite(ci)):
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def compare(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from lungcad_transforms.apps.mrpet.slices import patient_scores
    from lungcad_transforms.metrics.classification import paired_bootstrap_auc_difference, roc_auc
    from lungcad_transforms.utils.atomic import atomic_file
    from lungcad_transforms.visualize.classification_plots import save_confusion_matrix_png, save_roc_png

    wall0, cpu0 = time.time(), _cpu_seconds()
    # one thread by default: under load, two OpenMP threads spent ~30 x the CPU time of one per step
    torch.set_num_threads(args.threads)
    overrides: dict[str, Any] = copy.deepcopy(PRESETS[args.preset])
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    root = Path(args.work_dir)
    data = _datasets(root, overrides, "test")
    labels = data["test"].labels
    ids = [item["patient"] for item in data["test"].items]
    runs: dict[str, list[dict]] = {m: [] for m in args.modes}
    for seed in args.seeds:
        for mode in args.modes:
            logging.info("seed %d, mode %s", seed, mode)
            runs[mode].append(
                _run_mode(root, mode, seed, data, overrides, args.gradcam if seed == args.seeds[0] else 0)
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"seeds": list(args.seeds), "modes": {}, "paired_auc_tests": {}}
    patient_probs: dict[str, np.ndarray] = {}
    patient_labels = None
    for mode in args.modes:
        slice_probs = np.mean([r["probs"] for r in runs[mode]], axis=0)  # the seeds' ensemble
        order, scores, patient_labels = patient_scores(ids, slice_probs, labels)
        patient_probs[mode] = scores
        per_seed = [patient_scores(ids, r["probs"], labels)[1] for r in runs[mode]]
        results["modes"][mode] = {
            "patients": _summary(patient_labels, scores, None, args.n_bootstrap, 0),
            "slices": _summary(labels, slice_probs, ids, args.n_bootstrap, 0),
            "per_seed_patient_auc": [roc_auc(patient_labels, s) for s in per_seed],
            "per_seed_slice_auc": [roc_auc(labels, r["probs"]) for r in runs[mode]],
        }
        save_confusion_matrix_png(results["modes"][mode]["patients"]["confusion"], out / f"confusion_{mode}.png",
                                  title=f"{mode}: patients (mean of {len(args.seeds)} seeds)")  # fmt: skip
    names = {"mr": "MR", "pet": "PET", "mr_pet": "MR+PET"}
    curves = {names[m]: (patient_labels, patient_probs[m]) for m in args.modes}
    if len(set(np.asarray(patient_labels).tolist())) == 2:
        save_roc_png(curves, out / "roc.png", title="Tumour per patient, test split")
    if "mr_pet" in args.modes:
        for other in (m for m in args.modes if m != "mr_pet"):
            results["paired_auc_tests"][f"mr_pet_vs_{other}"] = {
                "patients": paired_bootstrap_auc_difference(patient_labels, patient_probs["mr_pet"], patient_probs[other],
                                                            args.n_bootstrap, 0),
                "slices": paired_bootstrap_auc_difference(labels, np.mean([r["probs"] for r in runs["mr_pet"]], axis=0),
                                                          np.mean([r["probs"] for r in runs[other]], axis=0),
                                                          args.n_bootstrap, 0, groups=ids),
            }  # fmt: skip
    results["patients"] = order
    results["patient_labels"] = [int(v) for v in patient_labels]
    results["patient_probabilities"] = {m: [float(v) for v in patient_probs[m]] for m in args.modes}
    results["kinds"] = {r["patient"]: r["kind"] for r in data["test"].patients}
    results["timing"] = {"wall_s": round(time.time() - wall0, 1), "cpu_s": round(_cpu_seconds() - cpu0, 1)}
    results["settings"] = {"preset": args.preset, "overrides": overrides, "n_bootstrap": args.n_bootstrap,
                           "threads": args.threads, "n_test_patients": len(order), "n_test_slices": len(labels)}  # fmt: skip
    with atomic_file(out / "results.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2, default=float) + "\n", encoding="utf-8")
    with atomic_file(out / "results.md") as tmp:
        tmp.write_text(_markdown(results, names), encoding="utf-8")
    return results


def _settings_line(settings: dict[str, Any]) -> str:
    o, data = settings["overrides"], settings["overrides"].get("embedded_data", {})
    parts = [
        f"preset `{settings['preset']}`",
        f"{settings['n_test_patients']} test patients ({settings['n_test_slices']} slices)",
    ]
    if data:
        parts.append(
            f"{data['n_train']} training / {data['n_val']} validation patients of {' x '.join(map(str, data['mr_shape']))} MR voxels"
        )
    for key, label in (
        ("network_def#block_inplanes", "ResNet34 widths"),
        ("epochs", "epochs"),
        ("input_spacing", "in-plane mm"),
        ("crop_size", "crop"),
    ):
        if key in o:
            parts.append(f"{label} {o[key]}")
    return "Settings: " + ", ".join(parts) + f"; {settings['threads']} CPU thread(s)."  # fmt: skip


def _markdown(results: dict[str, Any], names: dict[str, str]) -> str:
    lines = [f"# MR / PET / MR+PET comparison (seeds {', '.join(map(str, results['seeds']))})", "",
             _settings_line(results["settings"]), "",
             "Patient level: a patient's score is its highest slice probability (mean of the seeds' models), "
             "called tumour at 0.5; 95 % percentile-bootstrap CIs over patients "
             "(slice AUC: bootstrap over patients, their slices kept together).", "",
             "| mode | accuracy | precision | recall | specificity | ROC-AUC | AUC per seed | slice AUC |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for mode, r in results["modes"].items():
        p, s = r["patients"], r["slices"]
        seeds = ", ".join(_fmt(v) for v in r["per_seed_patient_auc"])
        lines.append(f"| {names[mode]} | " + " | ".join(_fmt(p[m], p[f"{m}_ci"]) for m in
                     ("accuracy", "precision", "recall", "specificity", "roc_auc")) + f" | {seeds} | {_fmt(s['roc_auc'], s['roc_auc_ci'])} |")  # fmt: skip
    lines += ["", "Confusion matrices per patient (also `confusion_<mode>.png`):", "",
              "| mode | TN | FP | FN | TP |", "|---|---|---|---|---|"]  # fmt: skip
    for mode, r in results["modes"].items():
        (tn, fp), (fn, tp) = r["patients"]["confusion"]
        lines.append(f"| {names[mode]} | {tn} | {fp} | {fn} | {tp} |")
    kinds = sorted(set(results["kinds"].values()))
    lines += ["", "Mean patient score by phantom kind (which tumours each mode sees):", "",
              "| mode | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]  # fmt: skip
    for mode, probs in results["patient_probabilities"].items():
        by_kind = {k: [v for pid, v in zip(results["patients"], probs, strict=True) if results["kinds"][pid] == k]
                   for k in kinds}  # fmt: skip
        lines.append(
            f"| {names[mode]} | " + " | ".join(_fmt(float(np.mean(v))) for v in by_kind.values()) + " |"
        )
    lines += ["", "Paired bootstrap of the AUC difference (same patients / slices each draw):", "",
              "| comparison | level | AUC difference | 95 % CI | p |", "|---|---|---|---|---|"]  # fmt: skip
    for name, test in results["paired_auc_tests"].items():
        for level, t in test.items():
            lines.append(
                f"| {name} | {level} | {_fmt(t['difference'])} | [{_fmt(t['ci_low'])}, {_fmt(t['ci_high'])}] | {_fmt(t['p_value'])} |"
            )
    t = results["timing"]
    lines += [
        "",
        f"Run time: {t['wall_s']} s wall, {t['cpu_s']} s CPU (user + sys, this process and its children).",
        "",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The command line; its defaults are the study the bundle docs report."""
    parser = argparse.ArgumentParser(description=__doc__.split(", and write")[0] + ".")
    parser.add_argument(
        "--work_dir", default=str(BUNDLE / "eval" / "compare"), help="runs, models, embedded data"
    )
    parser.add_argument(
        "--out", default=str(BUNDLE / "docs" / "results"), help="where results.md/json and plots go"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--epochs", type=int, default=None, help="override train.json's epochs")
    parser.add_argument("--n_bootstrap", type=int, default=1000)
    parser.add_argument("--gradcam", type=int, default=0, help="Grad-CAM overlays for the first seed's runs")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="bundle config overrides, e.g. network_def#block_inplanes=[16,32,64,128]",
    )
    parser.add_argument(
        "--preset",
        default="study",
        choices=sorted(PRESETS),
        help="study (default, ~10-15 CPU-min), tiny (a smoke run) or bundle (train.json as it is)",
    )
    parser.add_argument(
        "--tiny", dest="preset", action="store_const", const="tiny", help="same as --preset tiny"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; print the patient AUC per mode and the run time as one JSON line."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    results = compare(args)
    print(json.dumps({m: r["patients"]["roc_auc"] for m, r in results["modes"].items()} | results["timing"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
