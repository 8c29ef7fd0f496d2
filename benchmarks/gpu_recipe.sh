#!/usr/bin/env bash
# Device recipe (a CUDA GPU lent): the vLLM describer on the tiny LLaVA, then the offline profile end to end.
#
#   bash benchmarks/gpu_recipe.sh [OUT]        (OUT defaults to $OUT, else ./gpu-recipe-out)
#
# Needs, in the active environment: sedic-kit installed with vllm (`pip install -e '.[vllm,transformers,diffusion,compressai]'`
# there, with vllm's own torch; README: Semantic encoder backends) and a CUDA GPU. Step 3 uses the real offline
# weights when `sedic-kit models check offline` finds them all, else it is skipped with the reason.
# Every step prints its command, its time and nvidia-smi's memory in use; the first failure stops the recipe.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-${OUT:-gpu-recipe-out}}
mkdir -p "$OUT"
export SEDIC_CACHE=${SEDIC_CACHE:-$OUT/cache}
IMAGE=examples/images/kodim23.png

step() {
    echo "\$ $*"
    local start=$SECONDS
    "$@"
    echo "  -> $((SECONDS - start)) s; GPU memory in use: $(nvidia-smi --query-gpu=memory.used --format=csv,noheader | head -1)"
}

python -c "import torch, vllm; assert torch.cuda.is_available(), 'no CUDA device'; print('vllm', vllm.__version__, 'torch', torch.__version__, torch.cuda.get_device_name(0))"

# 1. vLLM on the tiny LLaVA (random weights in llava-hf's published layout): the engine starts, guided JSON decoding
#    returns a payload, release() hands the GPU memory back.
step sedic-kit encode "$IMAGE" -o "$OUT/tiny-vllm.sedic" --profile offline \
    --set describer.model=tiny/llava --set describer.gpu_memory_utilization=0.2 --set describer.max_model_len=1024 \
    --set grounder.model=tiny/grounding-dino --set segmenter.model=tiny/sam \
    --set reference_codec.pretrained=false --set restorer.model=tiny/sd15 --set restorer.controlnet=tiny/sd15-tile
python - <<'EOF'
import torch
from sedic_kit import ENCODER_ROLES, Codec
codec = Codec.from_profile("offline", overrides=["describer.model=tiny/llava", "describer.gpu_memory_utilization=0.2",
                                                  "describer.max_model_len=1024", "grounder.plugin=passthrough", "segmenter.plugin=box",
                                                  "reference_codec.pretrained=false", "restorer.plugin=upsample"])
result = codec.encode("examples/images/kodim23.png")
held = torch.cuda.mem_get_info()[0]
codec.release(*ENCODER_ROLES)
print(f"vllm payload: {result.payload.caption!r}, {len(result.payload.objects)} objects; "
      f"GPU free {held / 2**30:.2f} GiB with the engine, {torch.cuda.mem_get_info()[0] / 2**30:.2f} GiB after release()")
EOF

# 2. offline end to end with tiny models in every role but the vLLM describer: two phases, encoder released before ORAG.
step sedic-kit run examples/images --profile offline --out "$OUT/tiny-offline" \
    --set describer.model=tiny/llava --set describer.gpu_memory_utilization=0.2 --set describer.max_model_len=1024 \
    --set grounder.model=tiny/grounding-dino --set segmenter.model=tiny/sam \
    --set reference_codec.pretrained=false --set restorer.model=tiny/sd15 --set restorer.controlnet=tiny/sd15-tile

# 3. the real offline profile, where its weights are in the caches (no network on a lent device machine)
if sedic-kit models check offline > "$OUT/models-check.txt"; then
    step sedic-kit models check offline --memory
    step sedic-kit run examples/images --profile offline --out "$OUT/offline"
else
    echo "skipped the real offline run: weights missing (see $OUT/models-check.txt)"
fi
echo "done: $OUT"
