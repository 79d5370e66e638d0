"""Realism of CT-GAN injected nodules against phantom (and real LIDC) nodules of the same diameter.

Real set: every annotated nodule of the CT-GAN bundle's embedded phantoms (training and validation scans)
whose 32 mm cube fits its scan and whose diameter the injector covers (<= 14 mm), cut as the 1 mm cube
the GAN sees. Injected set: for each of them, a nodule of the same diameter injected by the trained
injector (``NoduleEditor.inject``: generate, low-pass, local noise, blended paste) at a random lung point
of the same scan, clear of the real nodules, cut the same way. Measured:

- HU profile: mean HU in 1 mm shells around the centre, and the centre HU (r < d/4);
- size: the equivalent-sphere diameter of the connected region above -500 HU holding the centre,
  against the requested diameter;
- a small 3-D CNN trained to tell real from injected cubes, 5-fold cross-validated ROC-AUC (0.5: the
  classifier cannot tell them apart);
- MONAI ``MMDMetric`` (linear kernel) between the two sets of central 16 mm boxes, next to the MMD of two
  halves of the real set (the sampling floor) and of real vs nodule-free lung boxes (a large gap);
- MONAI ``SSIMMetric`` of the in-painted box against the real one on the validation cubes (the bundle's
  ``val_ssim``);
- with ``--lidc``: the in-plane HU profile of LIDC-IDRI-0003's LUNA16 nodules (a real 2.5 mm-slice slab)
  against injected nodules of the same diameter.

Example: ``python scripts/ctgan_realism.py --out outputs/ctgan_realism --lidc ../shared/data/real``
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
GAN = REPO / "bundles" / "lung_nodule_ct_gan"

__all__ = ["main"]


def radial_profile(cube: np.ndarray, max_r: int = 12) -> np.ndarray:
    """Mean HU in 1 mm shells (r in [k, k+1)) around the cube centre."""
    c = (np.asarray(cube.shape) - 1) / 2
    r = np.sqrt(((np.indices(cube.shape).T - c) ** 2).sum(-1)).T
    return np.array([cube[(r >= k) & (r < k + 1)].mean() for k in range(max_r)])


def measured_diameter(cube: np.ndarray, threshold_hu: float = -500.0) -> float:
    """Equivalent-sphere diameter (mm, 1 mm voxels) of the dense region at the centre of the 16 mm box."""
    import cc3d

    box = cube[8:24, 8:24, 8:24] > threshold_hu
    labels = cc3d.connected_components(box, connectivity=6)
    centre = labels[7:9, 7:9, 7:9]
    ids = centre[centre > 0]
    if ids.size == 0:
        return 0.0
    volume = float((labels == np.bincount(ids).argmax()).sum())
    return float((6 * volume / np.pi) ** (1 / 3))


def _cubes(editor: Any, per_nodule_seed: int) -> dict[str, Any]:
    from lungcad_transforms.apps.ctgan import MASK_SIZE, RandInjectNoduled, cut_cube
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.tables import read_annotations
    from lungcad_transforms.errors import InputError

    data_dir = GAN / "data" / "phantoms"
    datalist = json.loads((data_dir / "datalist.json").read_text())
    annotations = read_annotations(data_dir / "annotations.csv")
    real, fake, lung, diam, split_of = [], [], [], [], []
    for split in ("training", "validation"):
        for i, entry in enumerate(datalist[split]):
            ct = load_image(data_dir / entry["image"])
            hu, affine = ct.numpy()[0], ct.affine.numpy()
            nodules = [a for a in annotations if a["seriesuid"] == entry["seriesuid"]]
            for j, a in enumerate(nodules):
                if a["diameter_mm"] > MASK_SIZE - 2:
                    continue
                try:
                    cube = cut_cube(hu, affine, [a["coordX"], a["coordY"], a["coordZ"]])
                except InputError:
                    continue
                d = float(a["diameter_mm"])
                t = RandInjectNoduled(
                    "image", editor, prob=1.0, diameter_mm=(d, d), margin_mm=12.0, avoid_key="annotated"
                )
                t.set_random_state(per_nodule_seed + 97 * i + j + (0 if split == "training" else 50000))
                out = t({"image": ct, "annotated": nodules})
                if not out.get("injected_nodules"):
                    continue
                row = out["injected_nodules"][0]
                at = [row["coordX"], row["coordY"], row["coordZ"]]
                real.append(cube)
                fake.append(cut_cube(out["image"].numpy()[0], affine, at))
                lung.append(cut_cube(hu, affine, at))  # the same lung point before the injection
                diam.append(d)
                split_of.append(split)
    return {"real": np.array(real), "injected": np.array(fake), "lung": np.array(lung), "diameter": np.array(diam),
            "split": np.array(split_of)}  # fmt: skip


def _classifier_auc(real: np.ndarray, fake: np.ndarray, folds: int, epochs: int, seed: int) -> dict[str, Any]:
    """5-fold cross-validated ROC-AUC of a small 3-D CNN (Small3DCNN on the 32 mm cube) telling real from injected."""
    from lungcad_transforms.apps.ctgan import normalise_hu
    from lungcad_transforms.metrics.classification import roc_auc
    from lungcad_transforms.networks.nets import Small3DCNN

    x = torch.as_tensor(normalise_hu(np.concatenate([real, fake]))[:, None], dtype=torch.float32)
    y = torch.cat([torch.zeros(len(real)), torch.ones(len(fake))])
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    scores = np.zeros(len(x))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        torch.manual_seed(seed + k)
        net = Small3DCNN(patch_size=(32, 32, 32), input_scale=None, in_channels=1, channels=(8, 16, 32),
                         fc_features=(64, 16), dropout=0.3, norm="batch")  # fmt: skip
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        for _ in range(epochs):
            net.train()
            for b in np.array_split(rng.permutation(train), max(1, len(train) // 16)):
                xb = x[b]
                flips = [d for d in (2, 3, 4) if rng.random() < 0.5]  # flips: orientation is not a cue
                xb = torch.flip(xb, flips) if flips else xb
                opt.zero_grad()
                loss = loss_fn(net(xb).reshape(-1), y[b])
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            scores[test] = torch.sigmoid(net(x[test]).reshape(-1)).numpy()
    return {
        "auc": float(roc_auc(y.numpy(), scores)),
        "folds": folds,
        "epochs": epochs,
        "n_real": len(real),
        "n_injected": len(fake),
    }


def _mmd(a: np.ndarray, b: np.ndarray) -> float:
    from monai.metrics import MMDMetric

    from lungcad_transforms.apps.ctgan import normalise_hu

    def box(c):
        return torch.as_tensor(normalise_hu(c[:, 8:24, 8:24, 8:24])[:, None], dtype=torch.float32)

    return float(MMDMetric()(box(a), box(b)).mean())


def _ssim_of_inpainting(editor: Any) -> dict[str, float]:
    """MONAI SSIM and MAE of each generator's in-painted box vs the real one, validation cubes ([-1, 1] scale)."""
    from monai.metrics import SSIMMetric

    from lungcad_transforms.apps.ctgan import ctgan_cube_items
    from lungcad_transforms.errors import InputError

    out = {}
    for task in ("injector", "remover"):
        items = ctgan_cube_items(GAN / "data" / "phantoms", task, "validation")
        x = torch.as_tensor(np.stack([i["image"] for i in items]))
        y = torch.as_tensor(np.stack([i["label"] for i in items]))
        try:
            net = editor.generator(task)
        except InputError as err:  # a generator not trained yet: reported as missing
            out[task] = {"missing": str(err)}
            continue
        with torch.no_grad():
            pred = net(x)
        b = slice(8, 24)
        ssim = SSIMMetric(spatial_dims=3, data_range=2.0, win_size=7)(pred[:, :, b, b, b], y[:, :, b, b, b])
        out[task] = {"ssim_box": float(ssim.mean()), "mae_box": float((pred - y)[:, :, b, b, b].abs().mean()),
                     "n": len(items)}  # fmt: skip
    return out


def _inplane_profile(cube: np.ndarray, max_r: int = 12) -> np.ndarray:
    """Mean HU in 1 mm rings around the centre of the cube's two central axial slices."""
    plane = cube[:, :, 15:17].mean(axis=2)
    r = np.sqrt(((np.indices(plane.shape).T - 15.5) ** 2).sum(-1)).T
    return np.array([plane[(r >= k) & (r < k + 1)].mean() for k in range(max_r)])


def _lidc_profiles(real_root: Path, fake: np.ndarray, diam: np.ndarray) -> list[dict[str, Any]]:
    """In-plane (axial) HU profile of LIDC-0003's LUNA16 nodules vs injected nodules within 2 mm of their diameter."""
    from lungcad_transforms.data.coords import world_to_voxel
    from lungcad_transforms.data.image_reader import load_image
    from lungcad_transforms.data.tables import read_annotations

    series = sorted((real_root / "chest_ct/lidc_idri_slabs/small/LIDC-IDRI-0003").glob("*/*"))[0]
    ct = load_image(series)
    hu, affine = ct.numpy()[0], ct.affine.numpy()
    uid = str(ct.meta.get("seriesuid", ""))
    rows = [
        a for a in read_annotations(real_root / "annotations/luna16/annotations.csv") if a["seriesuid"] == uid
    ]
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(0))
    out = []
    for a in rows:
        v = world_to_voxel([a["coordX"], a["coordY"], a["coordZ"]], affine)[0]
        k = int(round(v[2]))
        if not 0 <= k < hu.shape[2]:  # a LUNA16 nodule of the series outside this slab's slices
            continue
        yy, xx = np.indices(hu.shape[:2])
        r = np.sqrt(((yy - v[0]) * spacing[0]) ** 2 + ((xx - v[1]) * spacing[1]) ** 2)
        profile = [float(hu[:, :, k][(r >= s) & (r < s + 1)].mean()) for s in range(12)]
        near = np.abs(diam - a["diameter_mm"]) <= 2.0
        injected = (
            np.array([_inplane_profile(c) for c in fake[near]]).mean(0).round(1).tolist()
            if near.any()
            else None
        )
        out.append({"diameter_mm": float(a["diameter_mm"]), "inplane_profile_hu": [round(v, 1) for v in profile],
                    "injected_inplane_profile_hu": injected, "n_injected": int(near.sum())})  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gan_bundle_dir", default=str(GAN))
    parser.add_argument("--out", default="outputs/ctgan_realism")
    parser.add_argument("--epochs", type=int, default=15, help="epochs of the real-vs-injected classifier")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lidc", default=None, help="the real-data folder (holding chest_ct/, annotations/)")
    args = parser.parse_args(argv)

    from lungcad_transforms.apps.ctgan import NoduleEditor

    torch.set_num_threads(2)
    started = time.perf_counter()
    editor = NoduleEditor(args.gan_bundle_dir)
    sets = _cubes(editor, args.seed)
    real, fake, lung, diam = sets["real"], sets["injected"], sets["lung"], sets["diameter"]
    prof_real = np.array([radial_profile(c) for c in real])
    prof_fake = np.array([radial_profile(c) for c in fake])
    size_real = np.array([measured_diameter(c) for c in real])
    size_fake = np.array([measured_diameter(c) for c in fake])
    centre = [
        np.mean(c[(np.sqrt(((np.indices(c.shape).T - 15.5) ** 2).sum(-1)).T < max(d / 4, 1))])
        for c, d in zip(real, diam, strict=True)
    ]
    centre_fake = [
        np.mean(c[(np.sqrt(((np.indices(c.shape).T - 15.5) ** 2).sum(-1)).T < max(d / 4, 1))])
        for c, d in zip(fake, diam, strict=True)
    ]
    half = len(real) // 2
    perm = np.random.default_rng(args.seed).permutation(len(real))
    bins = [(0, 6), (6, 9), (9, 15)]
    by_size = []
    for lo, hi in bins:
        m = (diam >= lo) & (diam < hi)
        if m.any():
            by_size.append({"diameter_mm": [lo, hi], "n": int(m.sum()),
                            "profile_real_hu": prof_real[m].mean(0).round(1).tolist(),
                            "profile_injected_hu": prof_fake[m].mean(0).round(1).tolist(),
                            "measured_real_mm": float(size_real[m].mean()), "measured_injected_mm": float(size_fake[m].mean()),
                            "requested_mm": float(diam[m].mean())})  # fmt: skip
    result = {
        "n_pairs": len(real),
        "centre_hu": {"real_mean": float(np.mean(centre)), "real_sd": float(np.std(centre)),
                      "injected_mean": float(np.mean(centre_fake)), "injected_sd": float(np.std(centre_fake))},
        "size": {"real_abs_error_mm": float(np.mean(np.abs(size_real - diam))),
                 "injected_abs_error_mm": float(np.mean(np.abs(size_fake - diam))),
                 "real_bias_mm": float(np.mean(size_real - diam)), "injected_bias_mm": float(np.mean(size_fake - diam)),
                 "corr_injected_vs_requested": float(np.corrcoef(size_fake, diam)[0, 1])},
        "profile_by_diameter": by_size,
        "classifier": _classifier_auc(real, fake, 5, args.epochs, args.seed),
        "mmd": {"real_vs_injected": _mmd(real, fake), "real_half_vs_half": _mmd(real[perm[:half]], real[perm[half:2 * half]]),
                "real_vs_nodule_free_lung": _mmd(real, lung)},
        "inpainting": _ssim_of_inpainting(editor),
    }  # fmt: skip
    if args.lidc:
        result["lidc_0003"] = _lidc_profiles(Path(args.lidc), fake, diam)
    result["seconds"] = time.perf_counter() - started
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "realism.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "profile_by_diameter"}, indent=1))
    return result


if __name__ == "__main__":
    main()
