"""``groundingdino-py`` grounder: the official Grounding DINO code (``groundingdino`` package).

``groundingdino-py`` breaks on transformers 5, so the ``[groundingdino]`` extra pins
``transformers<5``: install it in its own environment (see the README), not beside the
``[transformers]`` plugins. Same filter as ``grounding-dino`` (:mod:`sedic_plugins.grounding`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.model_files import locate
from sedic_kit.models import ModelSpec
from sedic_kit.payload import Payload, SourceImage
from sedic_kit.roles import Grounder, free_memory

from .grounding import Detection, GroundingOptions, cxcywh_to_box, keep_found, query_text
from .hf_common import TorchOptions, pick_device

CHECKPOINT_REPO = "ShilongLiu/GroundingDINO"
VARIANTS = {  # variant: (config module inside the groundingdino package, checkpoint file in CHECKPOINT_REPO)
    "swint-ogc": ("GroundingDINO_SwinT_OGC.py", "groundingdino_swint_ogc.pth"),
    "swinb-cogcoor": ("GroundingDINO_SwinB_cfg.py", "groundingdino_swinb_cogcoor.pth"),
}


class GroundingDinoPyOptions(GroundingOptions, TorchOptions):
    variant: Literal["swint-ogc", "swinb-cogcoor"] = "swinb-cogcoor"
    checkpoint: str | None = Field(None, description="checkpoint file; default: the variant's from the hub, cached")


class GroundingDinoPyGrounder(Grounder[GroundingDinoPyOptions]):
    """Drops objects the official Grounding DINO cannot find; sets the best box of the others."""

    name = "groundingdino-py"
    requires = ("groundingdino",)
    extra = "groundingdino"

    def __init__(self, options: GroundingDinoPyOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._model: Any = None

    def required_models(self) -> list[ModelSpec]:
        if self.options.checkpoint:
            return [ModelSpec("grounder.checkpoint", self.options.checkpoint)]
        return [ModelSpec("grounder.variant", CHECKPOINT_REPO, allow_patterns=(VARIANTS[self.options.variant][1],))]

    def model(self) -> Any:
        if self._model is None:
            self.check_available()
            config, ckpt = VARIANTS[self.options.variant]
            found = locate(self.required_models()[0])
            path = found / ckpt if found.is_dir() else found
            from importlib import resources

            from groundingdino.util.inference import load_model

            config_path = resources.files("groundingdino") / "config" / config
            self._model = load_model(str(config_path), str(path), device=pick_device(self.options)[0])
        return self._model

    def release(self) -> None:
        self._model = None
        free_memory()

    def ground(self, source: SourceImage, payload: Payload) -> Payload:
        if not payload.objects:
            return payload
        import groundingdino.datasets.transforms as T
        from groundingdino.util.inference import predict

        model, device = self.model(), pick_device(self.options)[0]
        transform = T.Compose([T.RandomResize([800], max_size=1333), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        tensor, _ = transform(source.image, None)
        width, height = source.size
        detections = []
        for obj in payload.objects:
            # predict() already applies both thresholds; a non-empty phrase means the name's tokens passed.
            boxes, logits, phrases = predict(
                model, tensor, query_text(obj.name), self.options.box_threshold, self.options.text_threshold, device=device
            )
            detections.append(
                [
                    Detection(cxcywh_to_box(b.tolist(), width, height), float(s), 1.0 if p.strip() else 0.0)
                    for b, s, p in zip(boxes, logits, phrases)
                ]
            )
        return keep_found(payload, detections, self.options)


@hookimpl
def register_grounders(register: Register) -> None:
    register(GroundingDinoPyGrounder)
