"""FID and KID as generative-codec papers compute them: on 256 px patches (HiFiC's "FID/256").

Each image is cut into non-overlapping ``patch`` x ``patch`` patches from its top-left corner
(remainders dropped) and, when it is at least 1.5 patches on each side, once more on the grid
shifted by ``shift`` (half a patch) in both directions: a 768x512 Kodak image gives 6 + 2
patches, a 768x768 DIV2K/CLIC crop 9 + 4. Features are InceptionV3's 2048-d pool features from
torch-fidelity's network (``pt_inception-2015-12-05``, the TensorFlow FID weights) with its
original, non-antialiased bilinear resize to 299x299 (torchmetrics' default resize is
antialiased and does not match). FID and KID then come from torchmetrics, fed the features;
KID averages ``kid_subsets`` subsets of ``kid_subset_size`` samples drawn with a fixed seed.

FID's estimator is biased by roughly 1/N: below :data:`MIN_RELIABLE` samples a set's FID mostly
measures its size (Kodak's 192 patches), so such values are flagged wherever they are shown.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from PIL import Image

INCEPTION_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
"""torch-fidelity's InceptionV3 checkpoint, looked up in the torch hub cache."""
MIN_RELIABLE = 1000
"""Samples below which FID/KID are flagged as dominated by the set size (DIV2K's 1300 patches pass, Kodak's 192 do not)."""
BATCH = 32
"""Patches per forward pass of the feature network."""


@dataclass(frozen=True)
class RealismProtocol:
    """How FID/KID sample a set: ``patch`` px patches plus the shifted grid, or whole images (``patch=None``).

    A plain value: the dataset layer (or the command line) hands one to the runner.
    """

    patch: int | None = 256
    shift: int | None = None
    """Offset of the second grid (default: half a patch)."""
    kid_subset_size: int = 1000
    kid_subsets: int = 100
    seed: int = 0
    """Seeds KID's subset draws: the same set gives the same KID on every run."""

    @property
    def offset(self) -> int:
        return self.patch // 2 if self.patch and self.shift is None else int(self.shift or 0)

    @property
    def name(self) -> str:
        if self.patch is None:
            return "whole-image"
        return f"patch-{self.patch}/shift-{self.offset}"

    def describe(self) -> str:
        """One line for reports: what was sampled, the features, KID's subsets and seed."""
        if self.patch is None:
            what = "whole images, each resized to 299x299"
        else:
            what = (
                f"non-overlapping {self.patch}x{self.patch} patches, plus the grid shifted by {self.offset} px "
                f"where an image is at least {1.5 * self.patch:g} px on each side"
            )
        return (
            f"{what}; InceptionV3 pool features (torch-fidelity weights, non-antialiased resize); "
            f"KID over {self.kid_subsets} subsets of {self.kid_subset_size} (fewer when the set is smaller), seed {self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **asdict(self), "shift": self.offset if self.patch else None, "description": self.describe()}


PATCH = RealismProtocol()
"""The default: FID/256 as in HiFiC, MS-ILLM and most generative-codec papers."""
WHOLE = RealismProtocol(patch=None, kid_subset_size=50)
"""The older whole-image protocol (``fid-whole``, ``kid-whole``)."""


def patch_boxes(width: int, height: int, protocol: RealismProtocol) -> list[tuple[int, int, int, int]]:
    """The ``(left, top, right, bottom)`` boxes ``protocol`` samples from a ``width`` x ``height`` image."""
    p = protocol.patch
    if p is None:
        return [(0, 0, width, height)]
    origins = [0]
    if width >= 1.5 * p and height >= 1.5 * p and protocol.offset:
        origins.append(protocol.offset)
    return [
        (x, y, x + p, y + p)
        for o in origins
        for y in range(o, height - p + 1, p)
        for x in range(o, width - p + 1, p)
    ]


def samples(image: Image.Image, protocol: RealismProtocol) -> Any:
    """The image's samples as a ``N x 3 x h x w`` uint8 tensor (one whole image, or its patches)."""
    import torch

    arr = np.asarray(image.convert("RGB"), dtype=np.uint8)
    crops = [arr[t:b, l:r] for l, t, r, b in patch_boxes(arr.shape[1], arr.shape[0], protocol)]
    if not crops:
        return torch.zeros((0, 3, protocol.patch or 1, protocol.patch or 1), dtype=torch.uint8)
    return torch.from_numpy(np.ascontiguousarray(np.stack(crops).transpose(0, 3, 1, 2)))


FeatureNetwork = Callable[[Any], Any]
"""Maps a ``N x 3 x h x w`` uint8 tensor to ``N x D`` features."""


def inception(weights: str) -> FeatureNetwork:
    """torch-fidelity's InceptionV3 (2048-d pool) from ``weights``, resizing as the original FID code does."""
    import torch
    from torchmetrics.image.fid import NoTrainInceptionV3

    if "antialias" not in inspect.signature(NoTrainInceptionV3.__init__).parameters:
        import torchmetrics

        raise RuntimeError(f"torchmetrics {torchmetrics.__version__} can only resize with antialiasing; FID/KID need torchmetrics >= 1.6")
    net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=weights, antialias=False)

    def features(x: Any) -> Any:
        with torch.no_grad():
            return net(x)

    return features


def set_features(images: list[Image.Image], protocol: RealismProtocol, network: FeatureNetwork) -> Any:
    """Features of every sample of ``images`` (``N x D`` float64), in batches of :data:`BATCH`."""
    import torch

    out = []
    for image in images:
        x = samples(image, protocol)
        for i in range(0, len(x), BATCH):
            out.append(network(x[i : i + BATCH]).double().reshape(len(x[i : i + BATCH]), -1))
    return torch.cat(out) if out else torch.zeros((0, 0), dtype=torch.float64)


def _given(dim: int) -> Any:
    """A torchmetrics "feature extractor" for features already extracted (``dim`` wide)."""
    import torch

    module = torch.nn.Identity()
    setattr(module, "num_features", dim)  # read by FrechetInceptionDistance instead of probing with a dummy image
    return module


def fid(real: Any, fake: Any) -> float:
    """torchmetrics' FID of two feature sets."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_given(real.shape[1]))
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return float(metric.compute())


def kid(real: Any, fake: Any, protocol: RealismProtocol) -> tuple[float, float, int]:
    """torchmetrics' KID (mean, std, subset size) of two feature sets, subsets drawn with ``protocol.seed``."""
    import warnings

    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    size = min(protocol.kid_subset_size, len(real), len(fake))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        metric = KernelInceptionDistance(feature=_given(real.shape[1]), subsets=protocol.kid_subsets, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(protocol.seed)
        mean, std = metric.compute()
    return float(mean), float(std), size


def flags(count: int, protocol: RealismProtocol, kid_size: int | None = None) -> list[str]:
    """Why values over ``count`` samples are not comparable to the papers' (empty when they are); ``kid_size``: KID's."""
    out = []
    if count < MIN_RELIABLE:
        why = "KID's subsets then overlap heavily" if kid_size is not None else "FID is biased by ~1/N"
        out.append(f"only {count} samples: {why}, so the value is not comparable to published ones (needs >= {MIN_RELIABLE})")
    if kid_size is not None and kid_size < protocol.kid_subset_size:
        out.append(
            f"KID subsets of {kid_size} instead of {protocol.kid_subset_size} (the set has {count} samples)"
            + ("; every subset is the whole set, so its spread is 0" if kid_size == count else "")
        )
    return out
