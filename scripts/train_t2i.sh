#!/usr/bin/env bash
# Train the tiny text-to-image backbone on a world's CC3M-like train split (default: the embedded world), measuring
# oracle accuracy on that world's val captions after every chunk (the curve goes to OUT/curve.jsonl). Resumable:
# rerun the same command.
#   scripts/train_t2i.sh OUT [TOTAL_UNET_STEPS] [CHUNK] [BATCH] [WORLD_FOLDER]
set -euo pipefail
OUT=${1:?usage: scripts/train_t2i.sh OUT [TOTAL] [CHUNK] [BATCH] [WORLD]}
TOTAL=${2:-12000}
CHUNK=${3:-1000}
BATCH=${4:-32}
PY=${PYTHON:-.venv/bin/python}
WORLD=${5:-$($PY -c "from mg5bench.data.world import ensure_world; print(ensure_world(progress=False))")}
[ -d "$OUT/vae" ] || $PY -m reference_model.train_t2i vae --data "$WORLD/CC3M" --out "$OUT" --steps 1200 --batch 32
for ((s = CHUNK; s <= TOTAL; s += CHUNK)); do
  if [ -f "$OUT/unet_state.pt" ] && [ "$($PY -c "import torch; print(torch.load('$OUT/unet_state.pt', weights_only=True)['step'])")" -ge "$s" ]; then
    continue
  fi
  $PY -m reference_model.train_t2i unet --data "$WORLD/CC3M" --out "$OUT" --steps "$TOTAL" --stop-at "$s" --batch "$BATCH"
  $PY -m mg5bench.modelcards.t2i "$OUT/pipeline" --n 200 --guidance-scale 3 --train-step "$s" --append "$OUT/curve.jsonl" \
    --world "$WORLD"
done
