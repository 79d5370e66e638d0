"""Post-processing dictionary transforms."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform

from lungcad_transforms.transforms.post.array import ExtractCandidates

__all__ = ["ExtractCandidatesd", "ExtractCandidatesD", "ExtractCandidatesDict"]


class ExtractCandidatesd(MapTransform):
    """Dictionary-based :class:`ExtractCandidates`: adds ``output_key`` with the candidate rows.

    Args:
        keys: the probability map's key (one key).
        threshold, min_volume_mm3, score: as :class:`ExtractCandidates`.
        seriesuid_key: the data key holding the scan's id; when absent, ``meta["seriesuid"]`` or the
            file name the map came from.
        output_key: where the rows go.

    Examples:
        >>> import torch
        >>> from monai.data import MetaTensor
        >>> prob = MetaTensor(torch.zeros(1, 16, 16, 16), affine=torch.eye(4))
        >>> prob[0, 4:9, 4:9, 4:9] = 0.8
        >>> out = ExtractCandidatesd("prob")({"prob": prob, "seriesuid": "1.3.6.1.4.1.14519"})
        >>> out["candidates"][0]["seriesuid"], out["candidates"][0]["volume_mm3"]
        ('1.3.6.1.4.1.14519', 125.0)
    """

    backend = ExtractCandidates.backend

    def __init__(
        self,
        keys: KeysCollection,
        threshold: float = 0.5,
        min_volume_mm3: float = 10.0,
        score: str = "max",
        seriesuid_key: str = "seriesuid",
        output_key: str = "candidates",
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.extractor = ExtractCandidates(threshold, min_volume_mm3, score)
        self.seriesuid_key = seriesuid_key
        self.output_key = output_key

    def _seriesuid(self, data: Mapping[Hashable, Any], prob: Any) -> str:
        uid = data.get(self.seriesuid_key)
        if uid:
            return str(uid)
        meta: Mapping[str, Any] = prob.meta if isinstance(prob, MetaTensor) else {}
        return str(meta.get("seriesuid") or meta.get("filename_or_obj") or "")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        rows: list[dict[str, Any]] = []
        for key in self.key_iterator(d):
            rows.extend(self.extractor(d[key], seriesuid=self._seriesuid(d, d[key])))
        d[self.output_key] = rows
        return d


ExtractCandidatesD = ExtractCandidatesDict = ExtractCandidatesd
