"""groundingdino-py's Grounding DINO in transformers' layout: ``GroundingDinoConfig`` + state dict.

Key names and the q/k/v splits follow transformers' ``GroundingDinoForObjectDetection`` (4.57) and
the official ``groundingdino`` modules: Swin's fused ``qkv`` and ``nn.MultiheadAttention``'s
``in_proj_*`` become separate ``query``/``key``/``value`` projections (rows in that order). Every
key is mapped by exactly one rule or dropped for a stated reason; :func:`convert_state_dict`
raises on any other key, and the caller loads the result with ``strict=True``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

SWIN = "model.backbone.conv_encoder.model."
ENC = r"transformer\.encoder\."
DEC = r"transformer\.decoder\.layers\.(\d+)\."
QKV = "{part}"
"""In a replacement: the source tensor is split in three along rows, for ``query``, ``key``, ``value``."""

RULES: list[tuple[str, str]] = [
    # Swin backbone (groundingdino's norm{i} after stage i is transformers' stage{i+1} norm)
    (r"^backbone\.0\.patch_embed\.proj\.", SWIN + "embeddings.patch_embeddings.projection."),
    (r"^backbone\.0\.patch_embed\.norm\.", SWIN + "embeddings.norm."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.norm1\.", SWIN + r"encoder.layers.\1.blocks.\2.layernorm_before."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.norm2\.", SWIN + r"encoder.layers.\1.blocks.\2.layernorm_after."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.qkv\.", SWIN + r"encoder.layers.\1.blocks.\2.attention.self." + QKV + "."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.proj\.", SWIN + r"encoder.layers.\1.blocks.\2.attention.output.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.attn\.relative", SWIN + r"encoder.layers.\1.blocks.\2.attention.self.relative"),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.", SWIN + r"encoder.layers.\1.blocks.\2.intermediate.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.", SWIN + r"encoder.layers.\1.blocks.\2.output.dense."),
    (r"^backbone\.0\.layers\.(\d+)\.downsample\.", SWIN + r"encoder.layers.\1.downsample."),
    (r"^backbone\.0\.norm1\.", SWIN + "hidden_states_norms.stage2."),
    (r"^backbone\.0\.norm2\.", SWIN + "hidden_states_norms.stage3."),
    (r"^backbone\.0\.norm3\.", SWIN + "hidden_states_norms.stage4."),
    (r"^backbone\.0\.norm0\.", SWIN + "hidden_states_norms.stage1."),
    # text side
    (r"^bert\.", "model.text_backbone."),
    (r"^feat_map\.", "model.text_projection."),
    (r"^input_proj\.", "model.input_proj_vision."),
    # encoder: deformable image layers, text enhancer layers, fusion layers
    (ENC + r"layers\.(\d+)\.self_attn\.", r"model.encoder.layers.\1.deformable_layer.self_attn."),
    (ENC + r"layers\.(\d+)\.norm1\.", r"model.encoder.layers.\1.deformable_layer.self_attn_layer_norm."),
    (ENC + r"layers\.(\d+)\.linear1\.", r"model.encoder.layers.\1.deformable_layer.fc1."),
    (ENC + r"layers\.(\d+)\.linear2\.", r"model.encoder.layers.\1.deformable_layer.fc2."),
    (ENC + r"layers\.(\d+)\.norm2\.", r"model.encoder.layers.\1.deformable_layer.final_layer_norm."),
    (ENC + r"text_layers\.(\d+)\.self_attn\.in_proj_", r"model.encoder.layers.\1.text_enhancer_layer.self_attn." + QKV + "."),
    (ENC + r"text_layers\.(\d+)\.self_attn\.out_proj\.", r"model.encoder.layers.\1.text_enhancer_layer.self_attn.out_proj."),
    (ENC + r"text_layers\.(\d+)\.linear1\.", r"model.encoder.layers.\1.text_enhancer_layer.fc1."),
    (ENC + r"text_layers\.(\d+)\.linear2\.", r"model.encoder.layers.\1.text_enhancer_layer.fc2."),
    (ENC + r"text_layers\.(\d+)\.norm1\.", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_before."),
    (ENC + r"text_layers\.(\d+)\.norm2\.", r"model.encoder.layers.\1.text_enhancer_layer.layer_norm_after."),
    (ENC + r"fusion_layers\.(\d+)\.gamma_v$", r"model.encoder.layers.\1.fusion_layer.vision_param"),
    (ENC + r"fusion_layers\.(\d+)\.gamma_l$", r"model.encoder.layers.\1.fusion_layer.text_param"),
    (ENC + r"fusion_layers\.(\d+)\.layer_norm_v\.", r"model.encoder.layers.\1.fusion_layer.layer_norm_vision."),
    (ENC + r"fusion_layers\.(\d+)\.layer_norm_l\.", r"model.encoder.layers.\1.fusion_layer.layer_norm_text."),
    (ENC + r"fusion_layers\.(\d+)\.attn\.(values_|out_|)v_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.\2vision_proj."),
    (ENC + r"fusion_layers\.(\d+)\.attn\.(values_|out_|)l_proj\.", r"model.encoder.layers.\1.fusion_layer.attn.\2text_proj."),
    # decoder
    (DEC + r"cross_attn\.", r"model.decoder.layers.\1.encoder_attn."),
    (DEC + r"norm1\.", r"model.decoder.layers.\1.encoder_attn_layer_norm."),
    (DEC + r"ca_text\.in_proj_", r"model.decoder.layers.\1.encoder_attn_text." + QKV + "."),
    (DEC + r"ca_text\.out_proj\.", r"model.decoder.layers.\1.encoder_attn_text.out_proj."),
    (DEC + r"catext_norm\.", r"model.decoder.layers.\1.encoder_attn_text_layer_norm."),
    (DEC + r"self_attn\.in_proj_", r"model.decoder.layers.\1.self_attn." + QKV + "."),
    (DEC + r"self_attn\.out_proj\.", r"model.decoder.layers.\1.self_attn.out_proj."),
    (DEC + r"norm2\.", r"model.decoder.layers.\1.self_attn_layer_norm."),
    (DEC + r"linear1\.", r"model.decoder.layers.\1.fc1."),
    (DEC + r"linear2\.", r"model.decoder.layers.\1.fc2."),
    (DEC + r"norm3\.", r"model.decoder.layers.\1.final_layer_norm."),
    (r"^transformer\.decoder\.norm\.", "model.decoder.layer_norm."),
    (r"^transformer\.decoder\.ref_point_head\.", "model.decoder.reference_points_head."),
    (r"^transformer\.decoder\.bbox_embed\.", "model.decoder.bbox_embed."),
    # two-stage proposals, queries, heads
    (r"^transformer\.level_embed$", "model.level_embed"),
    (r"^transformer\.tgt_embed\.", "model.query_position_embeddings."),
    (r"^transformer\.enc_output\.", "model.enc_output."),
    (r"^transformer\.enc_output_norm\.", "model.enc_output_norm."),
    (r"^transformer\.enc_out_bbox_embed\.", "model.encoder_output_bbox_embed."),
    (r"^bbox_embed\.", "bbox_embed."),
]

DROPPED = {
    r"^bert\.pooler\.": "BERT's pooler: groundingdino computes it and never uses it; transformers builds the text model without one",
    r"^bert\.embeddings\.position_ids$": "a constant buffer (older transformers saved it), rebuilt by BertEmbeddings",
}
"""Keys with no counterpart, and why they do not change the outputs."""

SWIN_VARIANTS = {  # groundingdino's build_swin_transformer table, for the two published checkpoints
    "swin_T_224_1k": {"embed_dim": 96, "depths": [2, 2, 6, 2], "num_heads": [3, 6, 12, 24], "window_size": 7, "image_size": 224},
    "swin_B_384_22k": {"embed_dim": 128, "depths": [2, 2, 18, 2], "num_heads": [4, 8, 16, 32], "window_size": 12, "image_size": 384},
}


def target_key(key: str) -> str | None:
    """The transformers key for a groundingdino key (``None``: dropped); KeyError if no rule matches."""
    if any(re.search(pattern, key) for pattern in DROPPED):
        return None
    for pattern, replacement in RULES:
        if re.search(pattern, key):
            return re.sub(pattern, replacement, key, count=1)
    raise KeyError(f"no rule maps groundingdino key {key}")


def convert_state_dict(state_dict: dict[str, Any]) -> dict[str, Any]:
    """groundingdino's state dict in ``GroundingDinoForObjectDetection``'s layout (tensors shared, q/k/v sliced)."""
    out: dict[str, Any] = {}
    for key, tensor in state_dict.items():
        target = target_key(key.removeprefix("module."))
        if target is None:
            continue
        names = [target.replace(QKV, part) for part in ("query", "key", "value")] if QKV in target else [target]
        for name, chunk in zip(names, tensor.chunk(len(names))):
            if name in out:
                raise KeyError(f"two groundingdino keys map to {name}")
            out[name] = chunk
    return out


def hf_config(args: Any, text_config: Any) -> Any:
    """The ``GroundingDinoConfig`` of a groundingdino SLConfig ``args`` (text encoder: ``text_config``)."""
    from transformers import GroundingDinoConfig, SwinConfig

    if args.pe_temperatureH != args.pe_temperatureW:
        raise ValueError("transformers' Grounding DINO has one positional temperature for both axes")
    backbone = SwinConfig(**SWIN_VARIANTS[args.backbone], out_indices=[i + 1 for i in args.return_interm_indices])
    return GroundingDinoConfig(
        backbone_config=backbone,
        text_config=text_config,
        d_model=args.hidden_dim,
        num_queries=args.num_queries,
        encoder_layers=args.enc_layers,
        decoder_layers=args.dec_layers,
        encoder_ffn_dim=args.dim_feedforward,
        decoder_ffn_dim=args.dim_feedforward,
        encoder_attention_heads=args.nheads,
        decoder_attention_heads=args.nheads,
        encoder_n_points=args.enc_n_points,
        decoder_n_points=args.dec_n_points,
        num_feature_levels=args.num_feature_levels,
        activation_function=args.transformer_activation,
        max_text_len=args.max_text_len,
        two_stage=args.two_stage_type == "standard",
        decoder_bbox_embed_share=args.dec_pred_bbox_embed_share,
        two_stage_bbox_embed_share=args.two_stage_bbox_embed_share,
        embedding_init_target=args.embed_init_tgt,
        query_dim=args.query_dim,
        positional_embedding_temperature=args.pe_temperatureH,
        dropout=args.dropout,
        fusion_dropout=args.fusion_dropout,
        fusion_droppath=args.fusion_droppath,
    )


def write_transformers_model(config: Path, checkpoint: Path, directory: Path, size: int = 800, max_size: int = 1333) -> None:
    """groundingdino's ``config`` + ``checkpoint`` as a directory ``grounding-dino`` loads (``model``):
    the converted model (loaded strictly: nothing missing, nothing left over) and its processor, which
    resizes like groundingdino's ``RandomResize([size], max_size)``."""
    import torch
    from groundingdino.util.slconfig import SLConfig
    from transformers import BertConfig, BertTokenizer, GroundingDinoForObjectDetection, GroundingDinoImageProcessor, GroundingDinoProcessor

    args = SLConfig.fromfile(str(config))
    model = GroundingDinoForObjectDetection(hf_config(args, BertConfig.from_pretrained(args.text_encoder_type))).eval()
    model.load_state_dict(convert_state_dict(torch.load(checkpoint, map_location="cpu")["model"]), strict=True)
    model.save_pretrained(directory)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": size, "longest_edge": max_size})
    GroundingDinoProcessor(image_processor=image_processor, tokenizer=BertTokenizer.from_pretrained(args.text_encoder_type)).save_pretrained(directory)
