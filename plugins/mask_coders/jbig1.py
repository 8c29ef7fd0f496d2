"""``jbig1`` mask coder (baseline): the stacked grid coded by JBIG1 (ITU T.82) with jbigkit.

Uses the system's jbigkit library (``libjbig.so.0``, Debian/Ubuntu package ``libjbig0``, usually
already present as a libtiff dependency) through ctypes; no Python binding is installable
(``jbigkit-py`` on PyPI does not build on Python >= 3.11). Sequential, single stripe, typical
prediction on. The 20-byte image header (BIH) is not stored: the decoder rebuilds it from the
image size, which it knows.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from functools import lru_cache

import numpy as np
from PIL import Image

from sedic_kit.errors import FormatError, SedicError
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.masks import grid_size

from .grid import GridMaskCoder

STATE_BYTES = 1 << 16
"""Room for jbigkit's encoder/decoder state structs (a few KB in jbigkit 2.1)."""
TPBON = 0x08
EOK, EAGAIN = 0x00, 0x20
OUT = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_size_t, ctypes.c_void_p)


@lru_cache(maxsize=1)
def _lib() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("jbig")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.jbg_enc_init.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_char_p), OUT, ctypes.c_void_p]
    lib.jbg_enc_options.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_ulong, ctypes.c_int, ctypes.c_int]
    lib.jbg_dec_in.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
    lib.jbg_dec_getwidth.restype = ctypes.c_ulong
    lib.jbg_dec_getheight.restype = ctypes.c_ulong
    lib.jbg_dec_getimage.restype = ctypes.POINTER(ctypes.c_ubyte)
    lib.jbg_dec_getsize.restype = ctypes.c_ulong
    lib.jbg_dec_getimage.argtypes = [ctypes.c_void_p, ctypes.c_int]
    for fn in (lib.jbg_dec_getwidth, lib.jbg_dec_getheight, lib.jbg_dec_getsize):
        fn.argtypes = [ctypes.c_void_p]
    return lib


def _header(width: int, height: int) -> bytes:
    """The BIH jbigkit writes for our settings: one plane, one layer, one stripe, TPBON."""
    return struct.pack(">BBBBIIIBBBB", 0, 0, 1, 0, width, height, height, 0, 0, 0, TPBON)


class Jbig1MaskCoder(GridMaskCoder):
    """JBIG1 (jbigkit via ctypes) of the stacked grid; a baseline."""

    name = "jbig1"

    @classmethod
    def missing_requirements(cls) -> list[str]:
        return [] if _lib() is not None else ["libjbig (apt-get install libjbig0)"]

    @classmethod
    def check_available(cls) -> None:
        cls.library()

    @staticmethod
    def library() -> ctypes.CDLL:
        """jbigkit, loaded; a one-line error when it is not installed."""
        lib = _lib()
        if lib is None:
            raise SedicError("mask_coder 'jbig1' needs the jbigkit library: apt-get install libjbig0")
        return lib

    def encode(self, masks: list[np.ndarray], width: int, height: int, reference: Image.Image | None = None) -> bytes:
        self.check_available()
        if not masks:
            return b""
        grid = self.stack(masks, width, height)
        rows, cols = grid.shape
        packed = np.packbits(grid, axis=1).tobytes()
        plane = ctypes.create_string_buffer(packed, len(packed))
        planes = (ctypes.c_char_p * 1)(ctypes.cast(plane, ctypes.c_char_p))
        out = bytearray()
        sink = OUT(lambda start, n, _: out.extend(ctypes.string_at(start, n)))
        state = ctypes.create_string_buffer(STATE_BYTES)
        lib = self.library()
        lib.jbg_enc_init(state, cols, rows, 1, planes, sink, None)
        lib.jbg_enc_options(state, 0, TPBON, rows, 0, 0)
        lib.jbg_enc_out(state)
        lib.jbg_enc_free(state)
        header = _header(cols, rows)
        if bytes(out[: len(header)]) != header:
            raise SedicError("jbigkit wrote an unexpected image header")
        return bytes(out[len(header) :])

    def decode(self, data: bytes, count: int, width: int, height: int, reference: Image.Image | None = None) -> list[np.ndarray]:
        self.check_available()
        if self.no_objects(data, count):
            return []
        rows, cols = grid_size(width, height, self.options.scale)
        rows *= count
        stream = _header(cols, rows) + bytes(data)
        lib = self.library()
        state = ctypes.create_string_buffer(STATE_BYTES)
        lib.jbg_dec_init(state)
        used = ctypes.c_size_t(0)
        try:
            result = lib.jbg_dec_in(state, stream, len(stream), ctypes.byref(used))
            if result not in (EOK,):
                raise FormatError(f"corrupt mask section (jbigkit error {result:#x})")
            if (lib.jbg_dec_getwidth(state), lib.jbg_dec_getheight(state)) != (cols, rows):
                raise FormatError("corrupt mask section (size)")
            raw = ctypes.string_at(lib.jbg_dec_getimage(state, 0), lib.jbg_dec_getsize(state))
        finally:
            lib.jbg_dec_free(state)
        bits = np.unpackbits(np.frombuffer(raw, np.uint8).reshape(rows, -1), axis=1)[:, :cols].astype(bool)
        return self.unstack(bits, count, width, height)


@hookimpl
def register_entropy_coders(register: Register) -> None:
    register(Jbig1MaskCoder)
