"""Effect of CT-GAN edits on a trained FP-reduction model: injected nodules called nodules, removed ones not.

On the FP-reduction bundle's held-out test scans: ``--per_scan`` nodules are injected at random lung points
(clear of the annotated nodules; diameters uniform in ``--diameter``) and each annotated nodule that the
remover can cover (diameter <= 14 mm, cube inside the scan) is removed. The trained model scores the edited
location; the same locations in the unedited scan are scored too, as the control. Reported: the fraction
of injected nodules scored >= ``--threshold`` (target >= 80 %) and of removed nodules scored below it
(target >= 80 %). Results go to ``--out/effect.json``.

Example: ``python scripts/ctgan_effect.py --fp_bundle_root outputs/ctgan_worth/frac1_seed0_real``
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
FP_CONFIGS = REPO / "bundles" / "lung_nodule_ct_fp_reduction" / "configs"

__all__ = ["FPScorer", "main"]


class FPScorer:
    """The FP-reduction network of a trained bundle root, scoring world locations of a loaded scan."""

    def __init__(
        self, bundle_root: str | Path, overlays: list[str], configs: str | Path = FP_CONFIGS
    ) -> None:
        from monai.bundle import ConfigParser

        from lungcad_transforms.utils.checkpoint import load_checkpoint

        parser = ConfigParser()
        parser.read_config([str(Path(configs) / c) for c in ("train.json", *overlays)])
        parser["bundle_root"] = str(bundle_root)
        self.scales = parser.get_parsed_content("scales_mm")
        self.patch_size = parser.get_parsed_content("patch_size")
        self.hu_window = parser.get_parsed_content("hu_window")
        self.net = parser.get_parsed_content("network_def", instantiate=True)
        state = load_checkpoint(Path(parser.get_parsed_content("ckpt_dir")) / "model.pt", map_location="cpu")
        self.net.load_state_dict(state.get("model", state))
        self.net.eval()

    def __call__(self, ct: Any, centres_lps: np.ndarray) -> np.ndarray:
        from lungcad_transforms.data.coords import world_to_voxel
        from lungcad_transforms.transforms.spatial.functional import extract_multiscale_patches

        affine = ct.affine.numpy()
        patches, _ = extract_multiscale_patches(ct, affine, world_to_voxel(np.atleast_2d(centres_lps), affine),
                                                self.scales, self.patch_size, self.hu_window)  # fmt: skip
        with torch.no_grad():
            return torch.sigmoid(self.net(torch.as_tensor(patches))).numpy().reshape(-1)


def _phantom_dataset(dataset: str | None, fp_bundle_root: str | Path, configs: str | Path) -> Path:
    if dataset is not None:
        return Path(dataset)
    own = Path(fp_bundle_root) / "data" / "embedded" / "phantoms"
    if (own / "datalist.json").is_file():
        return own
    from monai.bundle import ConfigParser

    from lungcad_transforms.apps.detection import ensure_fp_dataset

    embedded = ConfigParser.load_config_file(str(Path(configs) / "train.json"))["embedded_data"]
    return Path(ensure_fp_dataset(FP_CONFIGS.parent / "data" / "phantoms", **embedded))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp_bundle_root", required=True, help="bundle root of a trained FP-reduction run")
    parser.add_argument(
        "--network", default="small3dcnn.json", help="network overlay of that run ('' = MGI-CNN)"
    )
    parser.add_argument("--gan_bundle_dir", default=str(REPO / "bundles" / "lung_nodule_ct_gan"))
    parser.add_argument(
        "--dataset",
        default=None,
        help="the FP phantom dataset (default: the trained run's own, <fp_bundle_root>/data/embedded/phantoms, "
        "else the one scripts/ctgan_augmentation_worth.py uses, made if absent)",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--per_scan", type=int, default=4)
    parser.add_argument("--diameter", type=float, nargs=2, default=[4.0, 12.0])
    parser.add_argument("--threshold", type=float, default=0.5, help="the FP bundle's nodule_threshold")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="outputs/ctgan_effect")
    parser.add_argument("--fp_configs", default=str(FP_CONFIGS), help="folder of the FP bundle's configs")
    args = parser.parse_args(argv)

    from lungcad_transforms.apps.ctgan import MASK_SIZE, NoduleEditor, RandInjectNoduled
    from lungcad_transforms.data.datasets import resolve_scans
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.tables import read_annotations
    from lungcad_transforms.errors import InputError

    torch.set_num_threads(2)
    scorer = FPScorer(args.fp_bundle_root, [args.network] if args.network else [], args.fp_configs)
    editor = NoduleEditor(args.gan_bundle_dir)
    dataset = _phantom_dataset(args.dataset, args.fp_bundle_root, args.fp_configs)
    annotations = read_annotations(dataset / "annotations.csv")
    injected: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i, scan in enumerate(resolve_scans(dataset / "datalist.json", split=args.split)):
        ct = load_image(scan)
        uid = str(scan["seriesuid"])
        nodules = [a for a in annotations if a["seriesuid"] == uid]
        inject = RandInjectNoduled("image", editor, prob=1.0, diameter_mm=args.diameter, margin_mm=12.0,
                                   avoid_key="annotated").set_random_state(args.seed * 1009 + i)  # fmt: skip
        data: dict[str, Any] = {"image": ct, "annotated": nodules}
        for _ in range(args.per_scan):
            data = inject(data)
        rows = data.get("injected_nodules", [])
        if rows:
            centres = np.array([[r["coordX"], r["coordY"], r["coordZ"]] for r in rows])
            before, after = scorer(ct, centres), scorer(data["image"], centres)
            injected += [{"seriesuid": uid, "diameter_mm": r["diameter_mm"], "score_before": float(b),
                          "score_after": float(a)} for r, b, a in zip(rows, before, after, strict=True)]  # fmt: skip
        for a in nodules:
            centre = np.array([a["coordX"], a["coordY"], a["coordZ"]])
            if a["diameter_mm"] > MASK_SIZE - 2:
                refused.append(
                    {"seriesuid": uid, "diameter_mm": a["diameter_mm"], "reason": "larger than the box"}
                )
                continue
            try:
                edited = editor.remove(ct, centre)
            except InputError as err:
                refused.append({"seriesuid": uid, "diameter_mm": a["diameter_mm"], "reason": str(err)})
                continue
            removed.append({"seriesuid": uid, "diameter_mm": a["diameter_mm"], "score_before": float(scorer(ct, centre)[0]),
                            "score_after": float(scorer(edited, centre)[0])})  # fmt: skip
    t = args.threshold

    def frac(rows: list[dict[str, Any]], key: str, above: bool) -> float:
        hits = [(r[key] >= t) if above else (r[key] < t) for r in rows]
        return float(np.mean(hits)) if hits else float("nan")

    result = {
        "threshold": t, "fp_bundle_root": str(args.fp_bundle_root), "split": args.split, "seconds": time.perf_counter() - started,
        "injected": {"n": len(injected), "called_nodule": frac(injected, "score_after", True),
                     "control_called_nodule_before_injection": frac(injected, "score_before", True),
                     "median_score": float(np.median([r["score_after"] for r in injected])) if injected else None},
        "removed": {"n": len(removed), "below_threshold": frac(removed, "score_after", False),
                    "control_called_nodule_before_removal": frac(removed, "score_before", True),
                    "median_score": float(np.median([r["score_after"] for r in removed])) if removed else None},
        "not_removable": refused, "rows": {"injected": injected, "removed": removed},
    }  # fmt: skip
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "effect.json").write_text(json.dumps(result, indent=1) + "\n")
    inj, rem = result["injected"], result["removed"]
    print(f"injected: {inj['n']} nodules, {inj['called_nodule']:.1%} scored >= {t} (before injection "
          f"{inj['control_called_nodule_before_injection']:.1%} of those lung points)")  # fmt: skip
    print(f"removed: {rem['n']} nodules, {rem['below_threshold']:.1%} scored < {t} (before removal "
          f"{rem['control_called_nodule_before_removal']:.1%} were scored >= {t}); {len(refused)} not removable")  # fmt: skip
    return result


if __name__ == "__main__":
    main()
