"""The last encoding step: a reference codec's output, the coded texts and masks -> one ``.sedic`` file.

The semantics and their text section are fixed before a :class:`FileAssembly` exists; it then
builds the whole file for any reference codec setting, which is what rate control's search over
the reference codec's settings needs (:func:`sedic_kit.rate.fit_reference`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .container import PluginRef, SedicFile, pack
from .errors import PluginError
from .payload import Payload, SourceImage
from .roles import DECODER_ROLES, MaskCoder, Plugins, ReferenceCodec, Role, TextCoder
from .stages import timed


@dataclass
class FileAssembly:
    """Everything of a file but its reference section, ready to be packed around one."""

    source: SourceImage
    semantics: Payload
    text: bytes
    mask_coder: MaskCoder[Any]
    refs: dict[Role, PluginRef]
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def start(
        cls, source: SourceImage, semantics: Payload, text_coder: TextCoder[Any], mask_coder: MaskCoder[Any], plugins: Plugins,
        timings: dict[str, float],
    ) -> FileAssembly:
        """Code the texts (once: they do not depend on the reference) and note every decoder plugin."""
        with timed(timings, "text"):
            text = text_coder.encode(semantics.texts())
        refs = {role: PluginRef(p.name, p.version, p.decode_config()) for role in DECODER_ROLES for p in [plugins[role]]}
        return cls(source, semantics, text, mask_coder, refs, timings)

    def build(self, codec: ReferenceCodec[Any]) -> tuple[bytes, dict[str, int]]:
        """The whole file with ``codec``'s reference, and its bits per section.

        The masks are coded given the reference as the decoder will see it, so they are coded
        again for every reference.
        """
        w, h = self.source.size
        sem = self.semantics
        with timed(self.timings, "reference"):
            sem.reference = codec.encode(self.source.image)
        self.refs[Role.reference_codec] = PluginRef(codec.name, codec.version, codec.decode_config())
        masks = [o.mask for o in sem.objects if o.mask is not None]
        with timed(self.timings, "masks"):
            decoded = codec.decode(sem.reference, w, h)
            coded_masks = self.mask_coder.encode(masks, w, h, reference=decoded)
        if masks and not coded_masks:
            raise PluginError(f"mask coder '{self.mask_coder.name}' wrote an empty section for {len(masks)} masks")
        return pack(SedicFile(w, h, self.refs, sem.reference, self.text, coded_masks, dict(sem.extras)))

    def probe(self, codec: ReferenceCodec[Any]) -> bytes:
        """The reference section alone (rate control's fast search)."""
        return codec.encode(self.source.image)
