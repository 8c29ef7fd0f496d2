"""Cross-attention capture in one UNet block and the ORAG energy (paper eq. 2).

Capture goes through diffusers' attention-processor API: the cross-attention (``attn2``)
processors of the guided block are swapped for :class:`CaptureProcessor` for the duration of one
guidance forward, then the original processors are put back. Only the probabilities of the
object's tokens are kept. After the block's last cross-attention the forward is cut short
(:class:`ForwardDone`): nothing later in the UNet influences the energy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sedic_kit.errors import ProfileError


class ForwardDone(Exception):
    """Raised by the last capturing layer: the rest of the UNet is not needed for the energy."""


def block_layers(unet: Any, block: str) -> list[str]:
    """Processor names of the cross-attention layers inside ``block`` (e.g. ``up_blocks.1``)."""
    names = [n for n in unet.attn_processors if n.startswith(f"{block}.") and n.endswith("attn2.processor")]
    if not names:
        blocks = sorted({n.split(".attentions")[0] for n in unet.attn_processors if n.endswith("attn2.processor")})
        raise ProfileError(f"restorer.guidance_block '{block}' has no cross-attention (choose from: {', '.join(blocks)})")
    return names


class CaptureProcessor:
    """Cross-attention that records ``softmax(QK^T)`` for the selected text tokens."""

    def __init__(self, tokens: list[int], store: list[Any], total: int) -> None:
        self.tokens = tokens
        self.store = store
        self.total = total

    def __call__(self, attn: Any, hidden_states: Any, encoder_hidden_states: Any = None, attention_mask: Any = None, **_: Any) -> Any:
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        if attn.norm_cross and encoder_hidden_states is not None:
            context = attn.norm_encoder_hidden_states(context)
        query = attn.head_to_batch_dim(attn.to_q(hidden_states))
        key = attn.head_to_batch_dim(attn.to_k(context))
        probs = attn.get_attention_scores(query, key, attention_mask)  # (batch * heads, queries, tokens)
        self.store.append(probs.unflatten(0, (-1, attn.heads))[..., self.tokens])
        if len(self.store) == self.total:
            raise ForwardDone
        value = attn.head_to_batch_dim(attn.to_v(context))
        out = attn.batch_to_head_dim(probs @ value)
        return attn.to_out[1](attn.to_out[0](out))


@contextmanager
def capture(unet: Any, block: str, tokens: list[int]) -> Iterator[list[Any]]:
    """Within the block, the list fills with one (batch, heads, queries, len(tokens)) map per layer."""
    original = dict(unet.attn_processors)
    layers = block_layers(unet, block)
    store: list[Any] = []
    proc = CaptureProcessor(tokens, store, len(layers))
    unet.set_attn_processor({n: proc if n in layers else p for n, p in original.items()})
    try:
        yield store
    finally:
        unet.set_attn_processor(dict(original))  # set_attn_processor empties the dict it is given


def energy(maps: list[Any], weights: dict[int, Any], reduce: str = "mean") -> Any:
    """E = (1 - sum_{m in M} A[m,k] / sum_m A[m,k])^2, averaged (or summed) over tokens k and layers.

    ``maps`` are captured probabilities (heads averaged here); ``weights`` maps a query count to
    the mask's coverage of each query position (flattened, same row-major order as the queries).
    """
    total = 0.0
    for probs in maps:
        attention = probs.float().mean(dim=1)  # (batch, queries, tokens)
        inside = (attention * weights[attention.shape[1]][None, :, None]).sum(dim=1)
        per_token = (1.0 - inside / attention.sum(dim=1)) ** 2
        total = total + (per_token.sum() if reduce == "sum" else per_token.mean())
    return total if reduce == "sum" else total / len(maps)
