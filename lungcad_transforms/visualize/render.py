"""Off-screen VTK volume rendering of the lungs with an Otsu transfer function and a heatmap overlay.

As in the Grad-CAM visualisation study: the lung HU histogram's multi-Otsu thresholds place the
transfer function so that aerated lung is transparent and nodule-density tissue (above the upper
threshold) opaque; the heatmap is drawn as a translucent red iso-surface in the same scene. One view per
side (camera on the patient's right, then left). When VTK cannot open an off-screen context (no EGL /
OSMesa), a maximum-intensity projection of the same region is drawn with matplotlib instead.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lungcad_transforms.utils.atomic import atomic_file

logger = logging.getLogger(__name__)

__all__ = ["otsu_transfer_points", "render_lungs", "vtk_offscreen_available"]

_MAX_VOXELS_PER_AXIS = 160


def otsu_transfer_points(hu: np.ndarray, lungs: np.ndarray) -> tuple[float, float]:
    """The two multi-Otsu thresholds (HU) of the lung histogram: aerated lung | ground glass | solid tissue.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> hu = np.concatenate([rng.normal(-850, 30, 5000), rng.normal(-500, 30, 500), rng.normal(20, 30, 500)])
        >>> low, high = otsu_transfer_points(hu, np.ones(hu.shape, bool))
        >>> bool(-800 < low < -550 and -450 < high < -30)
        True
    """
    from skimage.filters import threshold_multiotsu

    values = hu[lungs]
    values = values[(values > -1100) & (values < 600)]
    if values.size < 16 or np.ptp(values) == 0:
        return -600.0, -300.0
    low, high = threshold_multiotsu(values.astype(np.float32), classes=3, nbins=128)
    return float(low), float(high)


def vtk_offscreen_available() -> bool:
    """Whether VTK is installed and can open an off-screen OpenGL context here (``LUNGCAD_RENDER=mip`` says no)."""
    if os.environ.get("LUNGCAD_RENDER", "").lower() == "mip":
        return False
    try:
        import vtk
    except ImportError:
        return False
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(8, 8)
    try:
        return bool(window.SupportsOpenGL())
    finally:
        window.Finalize()


def _region(lungs: np.ndarray) -> tuple[slice, ...]:
    where = np.argwhere(lungs)
    if where.size == 0:
        return tuple(slice(0, s) for s in lungs.shape)
    lo, hi = where.min(axis=0), where.max(axis=0) + 1
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _vtk_image(volume: np.ndarray, spacing: Sequence[float]):
    import vtk
    from vtk.util.numpy_support import numpy_to_vtk

    image = vtk.vtkImageData()
    image.SetDimensions(*volume.shape)
    image.SetSpacing(*(float(s) for s in spacing))
    scalars = numpy_to_vtk(np.ascontiguousarray(volume.ravel(order="F")), deep=True)  # VTK: x fastest
    image.GetPointData().SetScalars(scalars)
    return image


def _render_vtk(
    hu: np.ndarray,
    heat: np.ndarray,
    spacing: Sequence[float],
    thresholds: tuple[float, float],
    side: str,
    size: int,
) -> np.ndarray:
    import vtk
    from vtk.util.numpy_support import vtk_to_numpy

    low, high = thresholds
    renderer = vtk.vtkRenderer()
    renderer.SetBackground(0.0, 0.0, 0.0)
    opacity = vtk.vtkPiecewiseFunction()
    opacity.AddPoint(-1100.0, 0.0)
    opacity.AddPoint(low, 0.0)
    opacity.AddPoint(high, 0.15)
    opacity.AddPoint(high + 100.0, 0.6)  # nodule-density tissue opaque enough to see, the overlay still shows
    opacity.AddPoint(1500.0, 0.7)
    colour = vtk.vtkColorTransferFunction()
    colour.AddRGBPoint(low, 0.45, 0.45, 0.5)
    colour.AddRGBPoint(high, 0.85, 0.75, 0.6)
    colour.AddRGBPoint(high + 200.0, 1.0, 0.95, 0.85)
    prop = vtk.vtkVolumeProperty()
    prop.SetScalarOpacity(opacity)
    prop.SetColor(colour)
    prop.ShadeOn()
    prop.SetInterpolationTypeToLinear()
    mapper = vtk.vtkSmartVolumeMapper()
    mapper.SetInputData(_vtk_image(hu.astype(np.float32), spacing))
    volume = vtk.vtkVolume()
    volume.SetMapper(mapper)
    volume.SetProperty(prop)
    renderer.AddVolume(volume)
    if float(heat.max()) > 0:
        surface = vtk.vtkFlyingEdges3D()
        surface.SetInputData(_vtk_image(heat.astype(np.float32), spacing))
        surface.SetValue(0, 0.5)
        heat_mapper = vtk.vtkPolyDataMapper()
        heat_mapper.SetInputConnection(surface.GetOutputPort())
        heat_mapper.ScalarVisibilityOff()
        actor = vtk.vtkActor()
        actor.SetMapper(heat_mapper)
        actor.GetProperty().SetColor(1.0, 0.15, 0.05)
        actor.GetProperty().SetOpacity(0.6)
        renderer.AddActor(actor)
    camera = renderer.GetActiveCamera()
    centre = 0.5 * (np.asarray(hu.shape) - 1) * np.asarray(spacing, dtype=float)
    camera.SetFocalPoint(*centre)
    # RAS: +x is the patient's right, +z superior
    camera.SetPosition(*(centre + np.array([1.0 if side == "right" else -1.0, 0.0, 0.0]) * 1000.0))
    camera.SetViewUp(0.0, 0.0, 1.0)
    renderer.ResetCamera()
    window = vtk.vtkRenderWindow()
    window.SetOffScreenRendering(1)
    window.SetSize(size, size)
    window.AddRenderer(renderer)
    window.Render()
    grab = vtk.vtkWindowToImageFilter()
    grab.SetInput(window)
    grab.ReadFrontBufferOff()
    grab.Update()
    rgb = vtk_to_numpy(grab.GetOutput().GetPointData().GetScalars()).reshape(size, size, -1)[..., :3]
    window.Finalize()
    return np.ascontiguousarray(rgb[::-1])  # VTK's first row is the bottom one


def _render_mip(hu: np.ndarray, heat: np.ndarray, spacing: Sequence[float], side: str) -> np.ndarray:
    """Maximum-intensity projection along the left-right axis, heatmap on top, as an RGB array."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import cm

    mip = hu.max(axis=0)  # (Y, Z)
    heat_mip = heat.max(axis=0)
    grey = np.clip((mip + 1000.0) / 1400.0, 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    colours = cm.jet(heat_mip)[..., :3]
    alpha = (0.5 * np.clip(heat_mip, 0, 1))[..., None]
    rgb = (1 - alpha) * rgb + alpha * colours
    # display: superior up; seen from the right, anterior is on the viewer's right
    picture = np.transpose(rgb, (1, 0, 2))[::-1]
    if side == "left":
        picture = picture[:, ::-1]
    step = max(1, int(round(float(spacing[2]) / float(spacing[1]))))
    picture = np.repeat(picture, step, axis=0)
    return (picture * 255).astype(np.uint8)


def render_lungs(
    path: str | os.PathLike,
    hu: np.ndarray,
    lungs: np.ndarray,
    spacing: Sequence[float],
    heat: np.ndarray | None = None,
    side: str = "right",
    size: int = 480,
    use_vtk: bool | None = None,
) -> tuple[Path, str]:
    """Render the lungs of a RAS CT (volume rendering, or MIP without an off-screen context) to a PNG.

    Args:
        path: PNG to write (atomically).
        hu: (X, Y, Z) CT in HU, RAS.
        lungs: (X, Y, Z) bool lung mask; only the lungs are rendered (the rest set to air).
        spacing: voxel size in mm.
        heat: optional (X, Y, Z) heatmap in [0, 1], drawn on top.
        side: ``"right"`` or ``"left"``: the camera is on that side of the patient.
        size: picture side in pixels (VTK).
        use_vtk: force (``True``) or skip (``False``) VTK; ``None``: VTK when it can render off-screen.

    Returns:
        ``(path, method)`` with method ``"vtk"`` or ``"mip"``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    box = _region(lungs)
    step = max(1, int(np.ceil(max(s.stop - s.start for s in box) / _MAX_VOXELS_PER_AXIS)))
    sub = tuple(slice(s.start, s.stop, step) for s in box)
    region = np.where(lungs[sub], hu[sub], -1000.0).astype(np.float32)
    heat_region = np.zeros_like(region) if heat is None else heat[sub].astype(np.float32)
    spacing_sub = [float(s) * step for s in spacing]
    method = "vtk" if (use_vtk if use_vtk is not None else vtk_offscreen_available()) else "mip"
    if method == "vtk":
        picture = _render_vtk(region, heat_region, spacing_sub, otsu_transfer_points(hu, lungs), side, size)
    else:
        picture = _render_mip(region, heat_region, spacing_sub, side)
    path = Path(path)
    with atomic_file(path) as tmp:
        plt.imsave(tmp, picture, format="png")
    return path, method
