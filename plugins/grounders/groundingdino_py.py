"""``groundingdino-py`` grounder: the official Grounding DINO code (``groundingdino`` package).

``groundingdino-py`` breaks on transformers 5, so the ``[groundingdino]`` extra pins
``transformers<5``: install it in its own environment (see the README), not beside the
``[transformers]`` plugins. Same filter as ``grounding-dino`` (:mod:`sedic_plugins.grounders.dino`).
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sedic_kit.errors import ModelNotFoundError, SedicError
from sedic_kit.file_sets import BERT
from sedic_kit.hookspecs import Register, hookimpl
from sedic_kit.model_files import require
from sedic_kit.models import ModelSpec
from sedic_kit.payload import SourceImage
from sedic_kit.roles import free_memory, one_line

from ..shared.hf import TorchOptions, pick_device
from .dino import Detection, DinoGrounder, GroundingOptions, name_positions, query_detections, query_text

CHECKPOINT_REPO = "ShilongLiu/GroundingDINO"
VARIANTS = {  # variant: (config module inside the groundingdino package, checkpoint file in CHECKPOINT_REPO)
    "swint-ogc": ("GroundingDINO_SwinT_OGC.py", "groundingdino_swint_ogc.pth"),
    "swinb-cogcoor": ("GroundingDINO_SwinB_cfg.py", "groundingdino_swinb_cogcoor.pth"),
}
PACKAGED_TEXT_ENCODER = "bert-base-uncased"
"""The ``text_encoder_type`` both packaged configs name (a hub id groundingdino would download)."""
BERT_EXTRAS = ("*.json", "*.txt")


class GroundingDinoPyOptions(GroundingOptions, TorchOptions):
    variant: Literal["swint-ogc", "swinb-cogcoor"] = "swinb-cogcoor"
    config: str | None = Field(None, description="groundingdino config file; default: the variant's packaged config")
    checkpoint: str | None = Field(None, description="checkpoint file; default: the variant's from the hub, cached")
    text_encoder: str | None = Field(None, description="BERT text encoder (hub id, cached, or local directory); default: the config's text_encoder_type")
    size: int = Field(800, ge=32, le=4096, description="shorter image side the model sees (official: 800)")
    max_size: int = Field(1333, ge=32, le=8192, description="longest image side the model sees (official: 1333)")


class GroundingDinoPyGrounder(DinoGrounder[GroundingDinoPyOptions]):
    """Drops objects the official Grounding DINO cannot find; sets the best box of the others."""

    name = "groundingdino-py"
    requires = ("groundingdino",)
    extra = "groundingdino"

    def __init__(self, options: GroundingDinoPyOptions | None = None, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        self._model: Any = None

    def config_path(self) -> Path:
        """The groundingdino config file: ``config``, else the variant's packaged one."""
        if self.options.config:
            path = Path(self.options.config).expanduser()
            if not path.is_file():
                raise ModelNotFoundError(f"grounder.config: {self.options.config} does not exist")
            return path
        self.check_available()
        from importlib import resources

        return Path(str(resources.files("groundingdino") / "config" / VARIANTS[self.options.variant][0]))

    def config_args(self) -> Any:
        """The config, read by groundingdino's ``SLConfig``."""
        self.check_available()
        from groundingdino.util.slconfig import SLConfig

        path = self.config_path()
        try:
            # run it once here first: SLConfig imports a temporary copy and, when that import fails,
            # leaves the copy's handle behind to raise again at some later garbage collection
            exec(compile(path.read_bytes(), str(path), "exec"), {})
            return SLConfig.fromfile(str(path))
        except Exception as exc:  # SLConfig runs the file: anything may fail
            raise SedicError(f"grounder.config: cannot read {path} ({one_line(exc)})") from None

    def text_encoder(self) -> str:
        """``text_encoder``, else the config's ``text_encoder_type`` (the packaged configs': bert-base-uncased)."""
        if self.options.text_encoder:
            return self.options.text_encoder
        if self.options.config is None:
            return PACKAGED_TEXT_ENCODER
        return str(self.config_args().text_encoder_type)

    def required_models(self) -> list[ModelSpec]:
        if self.options.checkpoint:
            checkpoint = ModelSpec("grounder.checkpoint", self.options.checkpoint)
        else:
            checkpoint = ModelSpec("grounder.variant", CHECKPOINT_REPO, needs=((VARIANTS[self.options.variant][1],),))
        return [checkpoint, ModelSpec("grounder.text_encoder", self.text_encoder(), allow_patterns=BERT_EXTRAS, needs=BERT)]

    def model(self) -> Any:
        """groundingdino's model built from the config, with the checkpoint's weights (all of them)."""
        if self._model is None:
            self.check_available()
            checkpoint, text_encoder = (require(spec) for spec in self.required_models())
            path = checkpoint / VARIANTS[self.options.variant][1] if checkpoint.is_dir() else checkpoint
            args = self.config_args()
            args.text_encoder_type = str(text_encoder)  # a local directory: groundingdino never downloads
            args.device = pick_device(self.options)[0]
            import torch
            from groundingdino.models import build_model
            from groundingdino.util.misc import clean_state_dict

            with redirect_stdout(io.StringIO()):  # groundingdino prints the text encoder it loads
                model = build_model(args)
            try:
                state = clean_state_dict(torch.load(path, map_location="cpu")["model"])
            except Exception as exc:  # not a torch file, or no "model" state dict in it
                raise SedicError(f"grounder.checkpoint: cannot load {path} as a groundingdino checkpoint ({one_line(exc)})") from None
            missing = [k for k, _ in model.named_parameters() if k not in state]
            if missing:
                raise SedicError(
                    f"grounder.checkpoint: {path} lacks {len(missing)} weights of the model its config builds "
                    f"(first: {missing[0]}); give the config it was trained with (grounder.config)"
                )
            model.load_state_dict(state, strict=False)  # official checkpoints carry unused buffers
            self._model = model.to(args.device).eval()
        return self._model

    def release(self) -> None:
        self._model = None
        free_memory()

    def detect(self, source: SourceImage, names: list[str]) -> list[list[Detection]]:
        """Candidate boxes per name (one query per name, as groundingdino's ``predict``)."""
        import groundingdino.datasets.transforms as T
        import torch

        model, device = self.model(), pick_device(self.options)[0]
        resize = T.RandomResize([self.options.size], max_size=self.options.max_size)  # one size: not random
        transform = T.Compose([resize, T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
        tensor, _ = transform(source.image, None)
        width, height = source.size
        result = []
        for name in names:
            caption = query_text(name)
            with torch.no_grad():
                out = model(tensor[None].to(device), captions=[caption])
            probs = out["pred_logits"][0].float().sigmoid().cpu()  # (queries, 256); -inf outside the text -> 0
            tokens = name_positions(model.tokenizer, model.tokenizer(caption)["input_ids"])
            result.append(query_detections(probs, out["pred_boxes"][0].float().cpu(), tokens, width, height))
        return result


@hookimpl
def register_grounders(register: Register) -> None:
    register(GroundingDinoPyGrounder)
