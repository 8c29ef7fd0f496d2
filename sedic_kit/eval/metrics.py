"""Quality metrics through torchmetrics (and piq/pyiqa where torchmetrics has none).

PSNR and MS-SSIM need no weights and are always computed. Every other metric loads its weights
through the library's own path (torch hub cache, Hugging Face cache via
:func:`sedic_kit.model_files.resolve`, pyiqa's cache); when a library or its weights are absent the
metric is reported as unavailable with a one-line reason instead of failing the run.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from ..errors import SedicError
from ..imaging import psnr
from ..install import TORCHVISION_HINT, install_hint
from ..model_files import resolve
from ..models import register_tiny
from . import patch_fid
from .patch_fid import INCEPTION_WEIGHTS, PATCH, WHOLE, FeatureNetwork, RealismProtocol, inception, set_features

DEFAULT_CLIP_MODEL = "openai/clip-vit-large-patch14"
FULL_LIBRARIES = {"torchvision", "torch_fidelity", "piq", "pyiqa"}
"""Libraries of ``[eval-full]``; the rest come with ``[eval]``."""


def hint(module: str) -> str:
    """How to install ``module`` as the README says."""
    return TORCHVISION_HINT if module in FULL_LIBRARIES else install_hint("eval")


class MetricUnavailable(SedicError):
    """A metric's library or weights are missing here."""


def need(*modules: str) -> None:
    """Import ``modules``; raise :class:`MetricUnavailable` naming the first missing or broken one."""
    absent = [m for m in modules if importlib.util.find_spec(m) is None]  # cheap check before heavy imports
    if absent:
        raise MetricUnavailable(f"needs {absent[0]} (not installed); {hint(absent[0])}")
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # a broken install (e.g. torchvision built for another torch) too
            detail = "not installed" if isinstance(exc, ModuleNotFoundError) else f"{type(exc).__name__}: {exc}"
            raise MetricUnavailable(f"needs {name} ({detail}); {hint(name)}") from None


def hub_checkpoint(filename: str, what: str) -> Path:
    """A file in the torch hub checkpoint cache, where torchvision/torch-fidelity load weights from."""
    import torch

    path = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if not path.is_file():
        raise MetricUnavailable(f"{what} weights {filename} are not in {path.parent}; fetch them where a network exists")
    return path


def to_tensor(image: Image.Image, dtype: Any = None) -> Any:
    """``1 x 3 x H x W`` tensor of 8-bit values (float64 by default)."""
    import torch

    arr = np.asarray(image.convert("RGB"), dtype=np.float64).transpose(2, 0, 1)[None]
    return torch.from_numpy(np.ascontiguousarray(arr)).to(dtype or torch.float64)


class Metric(ABC):
    """One metric: ``key`` in results, its direction, and how it is computed."""

    key: ClassVar[str]
    label: ClassVar[str]
    higher_is_better: ClassVar[bool]
    reference: ClassVar[bool] = True
    """Compares with the original (False: no-reference, scores the reconstruction alone)."""

    def load(self) -> None:
        """Load library and weights; raise :class:`MetricUnavailable` with the reason."""

    @abstractmethod
    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        """The metric of one image."""


class SetMetric(ABC):
    """A distribution metric over the whole set (FID, KID), computed from the samples' features."""

    key: ClassVar[str]
    label: ClassVar[str]
    higher_is_better: ClassVar[bool] = False
    whole: ClassVar[bool] = False
    """Samples whole images (the older protocol) instead of the suite's patch protocol."""

    @abstractmethod
    def from_features(self, real: Any, fake: Any, protocol: RealismProtocol) -> tuple[float, dict[str, Any]]:
        """The value and what a reader needs to judge it (sample count, KID's subsets, flags)."""


class PSNR(Metric):
    key, label, higher_is_better = "psnr-rgb", "PSNR (dB)", True

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        return psnr(reconstruction, original)


class MSSSIM(Metric):
    """MS-SSIM as CompressAI's ``eval_model`` computes it (pytorch-msssim: Gaussian 11/1.5, five scales).

    Not torchmetrics': its last-scale SSIM is averaged over a reflect-padded map, which shifts
    values by ~1e-5 from the reference definition that CompressAI results use.
    """

    key, label, higher_is_better = "ms-ssim-rgb", "MS-SSIM", True
    MIN_SIDE = 161  # four downsamplings of an 11-tap window

    def load(self) -> None:
        need("torch", "pytorch_msssim")

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        """NaN (reported as null) for images with a side under 161 pixels, where MS-SSIM is undefined."""
        from pytorch_msssim import ms_ssim

        import torch

        if min(original.size) < self.MIN_SIDE:
            return math.nan
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small grouped float64 convolutions: threads only add overhead (15x slower on 2 busy cores)
        try:
            return float(ms_ssim(to_tensor(reconstruction), to_tensor(original), data_range=255.0))
        finally:
            torch.set_num_threads(threads)


class LPIPS(Metric):
    """LPIPS (AlexNet backbone from torchvision, linear heads shipped in torchmetrics)."""

    key, label, higher_is_better = "lpips", "LPIPS", False

    def load(self) -> None:
        need("torch", "torchmetrics", "torchvision")
        hub_checkpoint("alexnet-owt-7be5be79.pth", "LPIPS AlexNet")
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        self.metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True).eval()

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        import torch

        with torch.no_grad():
            return float(self.metric(to_tensor(reconstruction, torch.float32) / 255, to_tensor(original, torch.float32) / 255))


class DISTS(Metric):
    """DISTS (VGG16 from torchvision, alpha/beta shipped in torchmetrics)."""

    key, label, higher_is_better = "dists", "DISTS", False

    def load(self) -> None:
        need("torch", "torchmetrics", "torchvision")
        hub_checkpoint("vgg16-397923af.pth", "DISTS VGG16")
        from torchmetrics.image import DeepImageStructureAndTextureSimilarity

        self.metric = DeepImageStructureAndTextureSimilarity().eval()

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        import torch

        with torch.no_grad():
            return float(self.metric(to_tensor(reconstruction, torch.float32) / 255, to_tensor(original, torch.float32) / 255))


@register_tiny("clip")
def build_tiny_clip(directory: Path) -> None:
    """A tiny random CLIP model and image processor (tests of ClipSIM's loading path)."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(0)
    text = {"vocab_size": 64, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}
    vision = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "image_size": 32, "patch_size": 8}
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(directory)


class ClipSIM(Metric):
    """Cosine similarity of the CLIP image embeddings of original and reconstruction (transformers CLIP)."""

    key, label, higher_is_better = "clipsim", "ClipSIM", True

    def __init__(self, model: str = DEFAULT_CLIP_MODEL) -> None:
        self.model_spec = model

    def load(self) -> None:
        try:
            path = resolve(self.model_spec, "ClipSIM model (--clip-model)", fetch=f"hf download {self.model_spec}")
        except SedicError as exc:
            raise MetricUnavailable(str(exc)) from None
        need("torch", "transformers")
        from transformers import CLIPImageProcessor, CLIPModel

        self.model = CLIPModel.from_pretrained(path).eval()
        self.processor = CLIPImageProcessor.from_pretrained(path)

    def embed(self, image: Image.Image) -> Any:
        import torch

        inputs = self.processor(images=image.convert("RGB"), return_tensors="pt")
        with torch.no_grad():
            out = self.model.get_image_features(**inputs)
        feats = out if isinstance(out, torch.Tensor) else out.pooler_output  # transformers >= 5 returns an output object
        return feats[0].double()

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        import torch

        return float(torch.nn.functional.cosine_similarity(self.embed(reconstruction), self.embed(original), dim=0))


class CLIPIQA(Metric):
    """CLIP-IQA (original prompts and weights, via torchmetrics and piq); no-reference."""

    key, label, higher_is_better, reference = "clip-iqa", "CLIP-IQA", True, False

    def load(self) -> None:
        need("torch", "torchmetrics", "transformers", "torchvision", "piq")
        from torchmetrics.multimodal import CLIPImageQualityAssessment

        try:
            self.metric = CLIPImageQualityAssessment(model_name_or_path="clip_iqa", data_range=255.0)
        except Exception as exc:  # piq downloads its checkpoint; offline this fails
            raise MetricUnavailable(f"CLIP-IQA weights cannot be loaded ({type(exc).__name__}: {exc})") from None

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        import torch

        with torch.no_grad():
            return float(self.metric(to_tensor(reconstruction, torch.float32)))


class NIQE(Metric):
    """NIQE (pyiqa, with its fitted natural-scene-statistics parameters); no-reference."""

    key, label, higher_is_better, reference = "niqe", "NIQE", False, False

    def load(self) -> None:
        need("torch", "pyiqa")
        import pyiqa

        try:
            self.metric = pyiqa.create_metric("niqe", device="cpu")
        except Exception as exc:  # the parameters file is downloaded on first use
            raise MetricUnavailable(f"NIQE parameters cannot be loaded ({type(exc).__name__}: {exc})") from None

    def score(self, reconstruction: Image.Image, original: Image.Image) -> float:
        import torch

        with torch.no_grad():
            return float(self.metric(to_tensor(reconstruction, torch.float32) / 255))


def load_inception() -> FeatureNetwork:
    """torch-fidelity's InceptionV3 from the torch hub cache, or :class:`MetricUnavailable` with the reason."""
    need("torch", "torchmetrics", "torchvision", "torch_fidelity")
    path = hub_checkpoint(INCEPTION_WEIGHTS, "FID/KID InceptionV3")
    try:
        return inception(str(path))
    except RuntimeError as exc:
        raise MetricUnavailable(str(exc)) from None


class FID(SetMetric):
    key, label = "fid", "FID"

    def from_features(self, real: Any, fake: Any, protocol: RealismProtocol) -> tuple[float, dict[str, Any]]:
        return patch_fid.fid(real, fake), {"flags": patch_fid.flags(len(real), protocol)}


class KID(SetMetric):
    key, label = "kid", "KID"

    def from_features(self, real: Any, fake: Any, protocol: RealismProtocol) -> tuple[float, dict[str, Any]]:
        mean, std, size = patch_fid.kid(real, fake, protocol)
        return mean, {"std": std, "subset_size": size, "subsets": protocol.kid_subsets, "flags": patch_fid.flags(len(real), protocol, size)}


class WholeFID(FID):
    key, label, whole = "fid-whole", "FID (whole images)", True


class WholeKID(KID):
    key, label, whole = "kid-whole", "KID (whole images)", True


IMAGE_METRICS: dict[str, Callable[..., Metric]] = {
    "psnr-rgb": PSNR,
    "ms-ssim-rgb": MSSSIM,
    "lpips": LPIPS,
    "dists": DISTS,
    "clipsim": ClipSIM,
    "niqe": NIQE,
    "clip-iqa": CLIPIQA,
}
SET_METRICS: dict[str, Callable[[], SetMetric]] = {"fid": FID, "kid": KID, "fid-whole": WholeFID, "kid-whole": WholeKID}
DEFAULT_METRICS = [*IMAGE_METRICS, "fid", "kid"]
"""What a run computes unless told otherwise (the whole-image FID/KID only by name)."""
ALWAYS = ("psnr-rgb", "ms-ssim-rgb")
LABELS = {k: c.label for k, c in {**IMAGE_METRICS, **SET_METRICS}.items()}  # type: ignore[attr-defined]
HIGHER_IS_BETTER = {k: c.higher_is_better for k, c in {**IMAGE_METRICS, **SET_METRICS}.items()}  # type: ignore[attr-defined]


class MetricSuite:
    """The metrics of a run, loaded once; ``unavailable`` maps a metric to why it is missing.

    ``realism`` is the sampling protocol of ``fid`` and ``kid`` (``fid-whole``/``kid-whole``
    always sample whole images); ``features`` replaces the InceptionV3 feature network (a
    callable from ``N x 3 x h x w`` uint8 tensors to ``N x D`` features; tests, other networks).
    """

    def __init__(
        self, names: list[str] | None = None, clip_model: str = DEFAULT_CLIP_MODEL,
        realism: RealismProtocol = PATCH, features: FeatureNetwork | None = None,
    ) -> None:
        names = list(names) if names is not None else list(DEFAULT_METRICS)
        unknown = sorted(set(names) - set(IMAGE_METRICS) - set(SET_METRICS))
        if unknown:
            raise SedicError(f"unknown metric(s) {', '.join(unknown)} (available: {', '.join([*IMAGE_METRICS, *SET_METRICS])})")
        names = [*ALWAYS, *(n for n in names if n not in ALWAYS)]
        self.realism = realism
        self.image: dict[str, Metric] = {}
        self.set: dict[str, SetMetric] = {}
        self.unavailable: dict[str, str] = {}
        self.features = features
        for name in names:
            if name in SET_METRICS:
                self.add_set_metric(name)
                continue
            metric = ClipSIM(clip_model) if name == "clipsim" else IMAGE_METRICS[name]()
            try:
                metric.load()
            except MetricUnavailable as exc:
                if name in ALWAYS:
                    raise SedicError(f"{name}: {exc}") from None
                self.unavailable[name] = str(exc)
                continue
            self.image[name] = metric

    def add_set_metric(self, name: str) -> None:
        """Add FID/KID; the feature network is loaded once for all of them."""
        if self.features is None:
            try:
                self.features = load_inception()
            except MetricUnavailable as exc:
                self.unavailable[name] = str(exc)
                return
        self.set[name] = SET_METRICS[name]()

    @property
    def names(self) -> list[str]:
        return [*self.image, *self.set, *self.unavailable]

    def protocol(self, metric: SetMetric) -> RealismProtocol:
        return WHOLE if metric.whole else self.realism

    def score(self, reconstruction: Image.Image, original: Image.Image) -> dict[str, float | None]:
        """Every available per-image metric (``None`` for an infinite PSNR)."""
        out: dict[str, float | None] = {}
        for key, metric in self.image.items():
            value = metric.score(reconstruction, original)
            out[key] = value if math.isfinite(value) else None
        return out

    def score_set(
        self, reconstructions: list[Image.Image], originals: list[Image.Image]
    ) -> tuple[dict[str, float | None], dict[str, dict[str, Any]]]:
        """Set metrics and, per metric, its protocol, sample count and flags (features extracted once per protocol)."""
        values: dict[str, float | None] = {}
        info: dict[str, dict[str, Any]] = {}
        cache: dict[RealismProtocol, tuple[Any, Any]] = {}
        for key, metric in self.set.items():
            protocol = self.protocol(metric)
            if protocol not in cache:
                assert self.features is not None  # set when the metric was added
                cache[protocol] = (set_features(originals, protocol, self.features), set_features(reconstructions, protocol, self.features))
            real, fake = cache[protocol]
            entry: dict[str, Any] = {"protocol": protocol.to_dict(), "samples": len(real), "images": len(originals)}
            if len(real) < 2:
                values[key] = None
                side = f"{protocol.patch} px on each side" if protocol.patch else "two images"
                entry["flags"] = [f"{len(real)} samples: {metric.label} needs at least two (images of at least {side})"]
            else:
                value, extra = metric.from_features(real, fake, protocol)
                values[key] = value if math.isfinite(value) else None
                entry.update(extra)
            info[key] = entry
        return values, info
