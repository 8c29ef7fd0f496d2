"""A tiny random model for the ``groundingdino-py`` grounder, written the way real ones ship.

:func:`tiny_groundingdino_py` writes a groundingdino config file (its ``.py`` SLConfig format), a
tiny random BERT with its ``BertTokenizer`` files as the config's ``text_encoder_type``, and a
checkpoint ``{"model": state_dict}``; it returns the plugin options that load them through the
plugin's own loading path (``config`` + ``checkpoint``, small input ``size``). Needs the
``[groundingdino]`` extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

WORDS = ("a", "the", "red", "blue", "green", "yellow", "car", "cat", "dog", "house", "tree", "sky", "disc", "bird", "boat", "hat", ",")
SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103, ".": 1012, "?": 1029}
"""bert-base-uncased's ids: transformers' Grounding DINO port hard-codes 101, 102, 1012 and 1029 as
the text separators, so a random vocabulary must keep them where bert-base-uncased has them."""

SIZE, MAX_SIZE = 160, 267
"""The official 800 / 1333 input sides scaled down: CPU time (about 1 s a query here instead of 10)."""

CONFIG = """\
modelname = "groundingdino"
backbone = "swin_T_224_1k"
position_embedding = "sine"
pe_temperatureH = 20
pe_temperatureW = 20
return_interm_indices = [1, 2, 3]
backbone_freeze_keywords = None
enc_layers = 1
dec_layers = 2
pre_norm = False
dim_feedforward = 256
hidden_dim = 256
dropout = 0.0
nheads = 8
num_queries = 16
query_dim = 4
num_patterns = 0
num_feature_levels = 4
enc_n_points = 2
dec_n_points = 2
two_stage_type = "standard"
two_stage_bbox_embed_share = False
two_stage_class_embed_share = False
transformer_activation = "relu"
dec_pred_bbox_embed_share = True
dn_box_noise_scale = 1.0
dn_label_noise_ratio = 0.5
dn_label_coef = 1.0
dn_bbox_coef = 1.0
embed_init_tgt = True
dn_labelbook_size = 2000
max_text_len = 256
text_encoder_type = {text_encoder!r}
use_text_enhancer = True
use_fusion_layer = True
use_checkpoint = False
use_transformer_ckpt = False
use_text_cross_attention = True
text_dropout = 0.0
fusion_dropout = 0.0
fusion_droppath = 0.0
sub_sentence_present = True
"""
"""GroundingDINO_SwinT_OGC.py with a small transformer: 1 encoder and 2 decoder layers, feed-forward 256,
16 queries, 2 sampling points. hidden_dim stays 256: groundingdino hard-codes 256 features for the
text position embedding."""


def vocabulary() -> list[str]:
    """bert-base-uncased's special-token layout (:data:`SPECIAL_IDS`), filler tokens, then :data:`WORDS`."""
    size = max(SPECIAL_IDS.values()) + 1
    vocab = [f"[unused{i}]" for i in range(size)]
    for token, index in SPECIAL_IDS.items():
        vocab[index] = token
    return vocab + list(WORDS)


def write_text_encoder(directory: Path) -> None:
    """A random 2-layer BERT (hidden 32) with ``BertTokenizer`` files, loadable by ``from_pretrained``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    directory.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(str(directory / "vocab.txt"), do_lower_case=True).save_pretrained(directory)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)
    BertModel(config).save_pretrained(directory)


def tiny_groundingdino_py(root: Path) -> dict[str, Any]:
    """Write the tiny model under ``root``; return the ``groundingdino-py`` options that load it."""
    import torch
    from groundingdino.models import build_model
    from groundingdino.util.slconfig import SLConfig

    root.mkdir(parents=True, exist_ok=True)
    write_text_encoder(root / "bert")
    config = root / "groundingdino_tiny.py"
    config.write_text(CONFIG.format(text_encoder=str(root / "bert")))
    args = SLConfig.fromfile(str(config))
    args.device = "cpu"
    torch.manual_seed(0)
    model = build_model(args).eval()
    with torch.no_grad():
        # groundingdino zeroes the box heads' last layers (every box would be its anchor): randomise them
        for head in (model.bbox_embed[0], model.transformer.enc_out_bbox_embed):
            torch.nn.init.normal_(head.layers[-1].weight, std=0.02)
            torch.nn.init.normal_(head.layers[-1].bias, std=0.2)
        # random features give logits of +-25 (scores all 0 or 1): shrink them
        model.transformer.decoder.norm.weight.mul_(0.02)
        model.transformer.decoder.norm.bias.mul_(0.02)
    checkpoint = root / "groundingdino_tiny.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    return {"config": str(config), "checkpoint": str(checkpoint), "device": "cpu", "size": SIZE, "max_size": MAX_SIZE}
