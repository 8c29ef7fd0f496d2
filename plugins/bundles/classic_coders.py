"""Classic baselines: byte ``huffman`` for text (the paper's) and run-length ``golomb`` for masks."""

from sedic_kit.hookspecs import Register, hookimpl

from ..mask_coders.golomb import GolombMaskCoder
from ..text_coders.huffman import HuffmanTextCoder


@hookimpl
def register_entropy_coders(register: Register) -> None:
    for cls in (HuffmanTextCoder, GolombMaskCoder):
        register(cls)
