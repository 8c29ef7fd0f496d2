"""Helpers shared by the transformers-backed plugins: device/dtype choice, quiet loading, tiny tokenizers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from sedic_kit.model_files import check_loading_info
from sedic_kit.roles import Options

Device = Literal["auto", "cpu", "cuda", "mps"]
DType = Literal["auto", "float32", "float16", "bfloat16"]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op CPU threads (0: leave it as it is), restoring the count after.

    Small models gain nothing from threads, and on a busy machine spinning OpenMP threads make
    them many times slower (the ``tiny`` ORAG restore: 275 s with 2 threads, 25 s with 1).
    """
    import torch

    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class TorchOptions(Options):
    """Where a model runs; ``auto`` = CUDA when available (half precision there), else CPU float32."""

    device: Device = "auto"
    dtype: DType = "auto"


def pick_device(options: TorchOptions) -> tuple[str, Any]:
    """``(device, torch dtype)`` for ``options``."""
    import torch

    device = options.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if options.dtype != "auto":
        return device, getattr(torch, options.dtype)
    return device, torch.float16 if device == "cuda" else torch.float32


def load_checked(cls: Any, path: Path, what: str, **kwargs: Any) -> Any:
    """``cls.from_pretrained(path, **kwargs)`` (transformers or diffusers) that raises one line naming the
    file and the first keys when the checkpoint has missing, unexpected or mis-shaped keys."""
    model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    check_loading_info(info, what, path)
    return model


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' (and diffusers') info/warning chatter while loading (e.g. image processor
    backend fallbacks, the ``block_out_channels`` notice diffusers prints for every ``AutoencoderTiny``
    config); checkpoint key mismatches are not chatter: :func:`load_checked` raises them."""
    import importlib.util

    from transformers.utils import logging as hf_logging

    loggers = [hf_logging]
    if importlib.util.find_spec("diffusers") is not None:
        from diffusers.utils import logging as diffusers_logging

        loggers.append(diffusers_logging)
    levels = [log.get_verbosity() for log in loggers]
    bars = hf_logging.is_progress_bar_enabled()
    for log in loggers:
        log.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def manual_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def byte_level_tokenizer(extra_special: tuple[str, ...] = ()) -> Any:
    """A fast byte-level tokenizer (256 byte tokens, no merges) built without any file."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    specials = ["<unk>", "<s>", "</s>", "<pad>", *extra_special]
    vocab = {tok: i for i, tok in enumerate([*specials, *alphabet])}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.add_special_tokens({"additional_special_tokens": list(extra_special)})
    return fast
