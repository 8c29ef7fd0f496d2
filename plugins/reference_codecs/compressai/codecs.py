"""Learned reference codecs from CompressAI: cheng2020-attn/anchor, mbt2018(-mean), bmshj2018-hyperprior.

The section holds the real ``compress()`` strings (never a rate estimate): the length of every
string but the last as a varint, then the strings. The decoder recomputes the latent shape from
the image size, ``downscale`` and the padding to multiples of 64.

A section is attacker input for a C++ entropy decoder that trusts it, so before decoding: each
string must be a whole rANS stream (32-bit words, at least the two of the final state); the
hyper-latent string must be exactly what the entropy bottleneck writes for the symbols it holds
at the header's latent shape (decoded and coded again: a string from another image size, another
architecture or another format is refused); the work, which grows with the declared size and
not with the bytes, is part of the decoder's budget (:meth:`CompressAICodec.decode_work`). The
decode itself runs in a forked child (:func:`sedic_kit.isolated.run_isolated`), so whatever the
native decoder still does with crafted latents ends as one line.

Weights: ``checkpoint`` (a local file written by ``sedic-kit train-codec`` or any CompressAI
state dict) or the CompressAI zoo weights for ``quality``/``metric``, read from the torch hub
cache (never downloaded here: a missing file is a one-line error naming it and the cache dir).
``pretrained = false`` gives seeded random weights (tests, speed measurements).

Install (see README), in the checkout: ``pip install torch==2.13.0 -e '.[compressai]' && pip install --no-deps compressai==1.2.8``.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path
from typing import Any, ClassVar, Literal

from PIL import Image
from pydantic import Field

from sedic_kit.container import Reader, put_varint
from sedic_kit.errors import FormatError, ModelNotFoundError, ProfileError, SedicError
from sedic_kit.install import install_hint
from sedic_kit.isolated import run_isolated
from sedic_kit.models import ModelSpec
from sedic_kit.roles import Options, ReferenceCodec, free_memory, one_line

from ...shared.hf import torch_threads
from ..scaling import DownscaleFilter, downscale, scaled_size

PAD = 64
"""Every architecture here downsamples by 64 in total (16 analysis x 4 hyper-analysis)."""
RANDOM_SEED = 0
STRINGS = 2
"""Every architecture here codes the latent y and the hyper-latent z (in that order)."""
WORD = 4
MAX_CHANNELS = 320
"""The most latent channels of a zoo architecture (mbt2018 at high quality)."""
LATENT_RATIO = 16
"""Latent positions per hyper-latent position (4 x 4)."""
MAX_SYMBOL = 1 << 12
"""Hyper-latent symbols beyond this are not what an encoder writes (and each costs a bypass loop per unit to code again)."""
WORK_HYPERPRIOR = 8
WORK_AUTOREGRESSIVE = 40
"""Decode work per padded pixel (see :meth:`CompressAICodec.decode_work`): the autoregressive
models cost 5x the hyperprior ones (measured, BENCHMARKS.md "Decode budget"), and the default
budget admits an autoregressive decode of a Kodak image (768x512) and no larger."""
"""rANS streams are 32-bit words; the final state is two of them."""
LADDER_DOWNSCALES = (6.0, 4.0, 3.0, 2.5, 2.0, 1.5, 1.0)


def import_compressai() -> types.ModuleType:
    """Import compressai without torchvision.

    compressai 1.2.8 imports ``torchvision.transforms`` at import time only to list its classes
    in ``compressai.registry`` (a transform registry sedic-kit never uses), and PyPI's
    torchvision does not load beside the CPU torch. When torchvision cannot be imported, an
    empty ``torchvision.transforms`` namespace stands in for the duration of the import and is
    removed afterwards, so nothing else in the process sees it.
    """
    if "compressai" in sys.modules:
        return sys.modules["compressai"]
    try:
        importlib.import_module("torchvision.transforms")
        return importlib.import_module("compressai")
    except ImportError:
        pass
    except Exception:  # a torchvision built for another torch fails with RuntimeError
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
    # torch_geometric (imported by compressai.registry too) probes for torchvision through
    # transformers: it must be imported before the stand-in exists, or the probe fails on it.
    importlib.import_module("torch_geometric.transforms")
    package, transforms = types.ModuleType("torchvision"), types.ModuleType("torchvision.transforms")
    package.transforms = transforms  # type: ignore[attr-defined]
    sys.modules.update({"torchvision": package, "torchvision.transforms": transforms})
    try:
        return importlib.import_module("compressai")
    finally:
        for name in ("torchvision", "torchvision.transforms"):
            if sys.modules.get(name) in (package, transforms):
                del sys.modules[name]


def zoo_checkpoint(arch: str, metric: str, quality: int) -> tuple[str, Path]:
    """URL of a zoo weight file and where torch hub caches it."""
    import torch

    zoo = importlib.import_module("compressai.zoo.image")
    try:
        url = zoo.model_urls[arch][metric][quality]
    except KeyError:
        raise SedicError(f"CompressAI has no zoo weights for {arch} metric={metric} quality={quality}") from None
    return url, Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def read_state_dict(path: Path) -> dict[str, Any]:
    """A state dict from a CompressAI checkpoint (plain, ``{"state_dict": ...}`` or zoo file)."""
    import torch

    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelNotFoundError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        data = data["state_dict"]
    if not isinstance(data, dict):
        raise ModelNotFoundError(f"{path}: expected a state dict")
    zoo = importlib.import_module("compressai.zoo.pretrained")
    return zoo.load_pretrained({k.removeprefix("module."): v for k, v in data.items()})


class CompressAIOptions(Options):
    quality: int = Field(1, ge=1, le=8, description="zoo quality (1 = lowest rate)")
    metric: Literal["mse", "ms-ssim"] = "mse"
    checkpoint: str | None = Field(None, description="local checkpoint file; overrides the zoo weights")
    pretrained: bool = Field(True, description="false: seeded random weights (tests, timing)")
    downscale: float = Field(1.0, ge=1.0, le=16.0, description="code at 1/downscale resolution")
    filter: DownscaleFilter = "lanczos"
    threads: int = Field(1, ge=1, description="torch CPU threads while coding")


class CompressAICodec(ReferenceCodec[CompressAIOptions]):
    """A CompressAI image model run on CPU for bit-exact entropy coding."""

    arch: ClassVar[str]
    max_quality: ClassVar[int] = 8
    work_per_pixel: ClassVar[int] = WORK_HYPERPRIOR
    """Decode cost per padded pixel at coded size, in plain pixels (see :meth:`decode_work`)."""
    decode_params = ("quality", "metric", "pretrained", "downscale")
    requires = ("compressai", "torch", "einops", "scipy", "pandas", "pytorch_msssim", "torch_geometric")
    extra = "compressai"

    def __init__(self, options: CompressAIOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        if self.options.quality > self.max_quality:
            raise ProfileError(f"reference_codec '{self.name}': quality must be <= {self.max_quality}")
        self._model: Any = None

    @classmethod
    def check_available(cls) -> None:
        missing = cls.missing_requirements()
        if missing:
            raise SedicError(f"reference_codec '{cls.name}' needs {', '.join(missing)}: {install_hint('compressai')}")

    @classmethod
    def import_problem(cls) -> str | None:
        missing = cls.missing_requirements()
        if missing:
            return f"needs {', '.join(missing)}"
        try:
            import_compressai()  # what encode/decode do: a plain `import compressai` needs torchvision
        except Exception as exc:
            return f"import compressai fails: {one_line(exc)}"
        return None

    def required_models(self) -> list[ModelSpec]:
        if self.options.checkpoint or not self.options.pretrained:
            return []
        self.check_available()
        import_compressai()
        url, _ = zoo_checkpoint(self.arch, self.options.metric, self.options.quality)
        return [ModelSpec("reference_codec.checkpoint", f"{self.arch}-{self.options.metric}-{self.options.quality}", "torch-hub", url=url)]

    # -- model -----------------------------------------------------------------------------
    def model(self) -> Any:
        """The network with its entropy-coder tables built, loaded once."""
        if self._model is None:
            self.check_available()
            import torch

            import_compressai()
            zoo = importlib.import_module("compressai.zoo.image")
            cls = zoo.model_architectures[self.arch]
            opts = self.options
            if opts.checkpoint:
                path = Path(opts.checkpoint).expanduser()
                if not path.is_file():
                    raise ModelNotFoundError(f"reference_codec.checkpoint: {path} does not exist")
                model = cls.from_state_dict(read_state_dict(path))
            elif opts.pretrained:
                url, path = zoo_checkpoint(self.arch, opts.metric, opts.quality)
                if not path.is_file():
                    raise ModelNotFoundError(
                        f"reference_codec '{self.name}': zoo weights {path.name} are not in the torch hub cache "
                        f"{path.parent}; download {url} there, or set reference_codec.checkpoint to a local file"
                    )
                model = cls.from_state_dict(read_state_dict(path))
            else:
                with torch.random.fork_rng():
                    torch.manual_seed(RANDOM_SEED)
                    model = cls(*zoo.cfgs[self.arch][opts.quality])
            model.eval()
            model.update()  # builds the CDF tables where the weights do not carry them
            self._model = model
        return self._model

    def release(self) -> None:
        self._model = None
        free_memory()

    # -- coding ----------------------------------------------------------------------------
    def _coded_size(self, width: int, height: int) -> tuple[int, int]:
        return scaled_size(width, height, self.options.downscale)

    def encode(self, image: Image.Image) -> bytes:
        import numpy as np
        import torch
        import torch.nn.functional as F

        small = downscale(image.convert("RGB"), self.options.downscale, self.options.filter)
        w, h = small.size
        x = torch.from_numpy(np.asarray(small, dtype=np.float32) / 255.0).permute(2, 0, 1)[None]
        x = F.pad(x, (0, -w % PAD, 0, -h % PAD), mode="replicate")
        with torch.inference_mode(), torch_threads(self.options.threads):
            out = self.model().compress(x)
        strings = [s[0] for s in out["strings"]]
        if len(strings) != STRINGS:
            raise SedicError(f"{self.name}: expected {STRINGS} compressed strings, got {len(strings)}")
        section = bytearray()
        for s in strings[:-1]:
            put_varint(section, len(s))
        for s in strings:
            section += s
        return bytes(section)

    def decode_work(self, data: bytes, width: int, height: int) -> int:
        """The padded coded image's pixels times :attr:`work_per_pixel` (the synthesis transform
        and the entropy decoder run per latent element, the context model once per latent
        position), whatever the section's length."""
        w, h = self._coded_size(width, height)
        self.split(data)
        return -(-w // PAD) * PAD * (-(-h // PAD) * PAD) * self.work_per_pixel

    def split(self, data: bytes) -> list[bytes]:
        """The section's strings, each checked to be a whole rANS stream."""
        reader = Reader(data)
        lengths = [reader.varint("compressai string length") for _ in range(STRINGS - 1)]
        strings = [reader.take(n, "compressai string") for n in lengths]
        strings.append(reader.take(reader.end - reader.pos, "compressai string"))
        for what, s in zip(("latent", "hyper-latent"), strings):
            if len(s) < 2 * WORD or len(s) % WORD:
                raise FormatError(
                    f"corrupt {self.name} reference section (a {what} string of {len(s)} bytes: "
                    f"rANS streams are whole 32-bit words, at least {2 * WORD} bytes)"
                )
        return strings

    def decode(self, data: bytes, width: int, height: int) -> Image.Image:
        strings = self.split(data)  # before the model is built: a few checks cost nothing
        model = self.model()
        w, h = self._coded_size(width, height)
        shape = (-(-h // PAD), -(-w // PAD))
        arr = run_isolated(lambda: self._decompress(model, strings, shape, w, h), f"the {self.name} decoder")
        return Image.fromarray(arr, "RGB")

    def _decompress(self, model: Any, strings: list[bytes], shape: tuple[int, int], w: int, h: int) -> Any:
        """The reference as an ``h x w x 3`` uint8 array (run in the child).

        The strings get zero words appended, one per symbol they can hold: the C++ decoder reads
        ahead without bounds, and a crafted stream then reads zeros (deterministically) instead
        of whatever follows the buffer. A valid stream never reads them.
        """
        import numpy as np
        import torch

        positions = shape[0] * shape[1]
        y, z = strings
        with torch.inference_mode(), torch_threads(self.options.threads):
            bottleneck = model.entropy_bottleneck
            z_hat = bottleneck.decompress([z + bytes(WORD * MAX_CHANNELS * positions)], shape)
            symbols = (z_hat - bottleneck._get_medians()).abs().max().item()
            if symbols > MAX_SYMBOL or bottleneck.compress(z_hat)[0] != z:
                raise FormatError(
                    f"corrupt {self.name} reference section (the hyper-latent string is not one this codec "
                    f"writes for a {w}x{h} reference)"
                )
            y = y + bytes(WORD * MAX_CHANNELS * LATENT_RATIO * positions)
            x_hat = model.decompress([[y], [z]], shape)["x_hat"]
        arr = (x_hat[0, :, :h, :w].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        return np.ascontiguousarray(arr)

    def rate_ladder(self) -> list[dict[str, Any]]:
        """Downscale factors, coarsest first, each with every zoo quality (only the factors for a checkpoint)."""
        if self.options.checkpoint:
            return [{"downscale": s} for s in LADDER_DOWNSCALES]
        return [{"downscale": s, "quality": q} for s in LADDER_DOWNSCALES for q in range(1, self.max_quality + 1)]


class Cheng2020Attention(CompressAICodec):
    """Cheng et al. 2020, GMM-free variant with attention (the paper's reference codec)."""

    name = arch = "cheng2020-attn"
    max_quality = 6
    work_per_pixel = WORK_AUTOREGRESSIVE


class Cheng2020Anchor(CompressAICodec):
    """Cheng et al. 2020 anchor (residual blocks, no attention)."""

    name = arch = "cheng2020-anchor"
    max_quality = 6
    work_per_pixel = WORK_AUTOREGRESSIVE


class Mbt2018(CompressAICodec):
    """Minnen et al. 2018 joint autoregressive and hierarchical priors."""

    name = arch = "mbt2018"
    work_per_pixel = WORK_AUTOREGRESSIVE


class Mbt2018Mean(CompressAICodec):
    """Minnen et al. 2018 mean-scale hyperprior (no context model: fast)."""

    name = arch = "mbt2018-mean"


class Bmshj2018Hyperprior(CompressAICodec):
    """Ballé et al. 2018 scale hyperprior (fast)."""

    name = arch = "bmshj2018-hyperprior"


CODECS: tuple[type[CompressAICodec], ...] = (Cheng2020Attention, Cheng2020Anchor, Mbt2018, Mbt2018Mean, Bmshj2018Hyperprior)
