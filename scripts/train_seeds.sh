#!/usr/bin/env bash
# Train the extra stage-2 seeds of every compared trained variant (stage-2 seeds only: each seed starts from the
# same stage-1 parent as the shipped checkpoint), then export them beside the shipped ones as <name>-seed<k>.
# Resumable: rerun the same command and finished parts are skipped, interrupted ones continue.
# Seeds: the recipe's own seed is one of three (stage 2: 42, 43, 44; Divter: 0, 1, 2); a variant's shipped
# checkpoint keeps its folder name and the others get -seed<k>.
# Wall time on a 2-core CPU, one training at a time with one thread: stage 2 ~15 min each of 10, the two stage-1
# parents of the no-cfg and no-caption-loss ablations ~16 min each (retrained, checked against the sha256 their
# stage 2 recorded), Divter-MMDialog ~3 min each of 2: about 3 h.
#   scripts/train_seeds.sh [RUNS_DIR] [DEST]
set -euo pipefail
RUNS=${1:-runs/reference}
DEST=${2:-reference_model/checkpoints}
PY=${PYTHON:-.venv/bin/python}  # the interpreter, not a setting
WORLD=$($PY -c "from mg5bench.data.world import ensure_world; print(ensure_world(progress=False))")
B=$(cd "$DEST/backbones" && pwd)
mkdir -p "$RUNS"

done_run() { [ -f "$1/state.json" ] && [ -f "$1/trainable.safetensors" ]; }
S2_RECIPE="--steps 800 --batch 16 --lr 1e-3 --mapper-lr-scale 0.1 --lora-targets q_proj,k_proj,v_proj,o_proj \
--val-every 200 --threads 1"
stage2() {  # TASK OUT INIT SEED [flags]
  local task=$1 out=$2 init=$3 seed=$4; shift 4
  local folder=VIST; [ "$task" = mmdialog ] && folder=MMDialog
  # shellcheck disable=SC2086
  done_run "$out" || $PY -m reference_model.train stage2 --task "$task" --init "$init" --data "$WORLD/$folder" \
    --out "$out" $S2_RECIPE --seed "$seed" "$@"
}
# the stage-1 parent of an ablation, as scripts/train_reference.sh trains it, checked against the recorded sha256
stage1_parent() {  # OUT SHA256 [flags]
  local out=$1 want=$2; shift 2
  local cw="--caption-weight 5.0"
  [[ " $* " == *" --no-caption-loss "* ]] && cw=""
  done_run "$out-a" || $PY -m reference_model.train stage1 --backbones "$B" --data "$WORLD/CC3M" \
    --out "$out-a" --steps 2000 --batch 16 --lr 2e-4 --threads 1 "$@"
  # shellcheck disable=SC2086
  done_run "$out" || $PY -m reference_model.train stage1 --init "$out-a" --data "$WORLD/CC3M" \
    --out "$out" --steps 600 --batch 16 --lr 2e-4 $cw --val-every 300 --threads 1 "$@"
  local got
  got=$(sha256sum "$out/trainable.safetensors" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "$out: sha256 $got is not the parent the shipped ablation recorded ($want); its seeds would not share" \
      "a parent with it" >&2
    exit 1
  fi
}

for seed in 43 44; do
  stage2 vist "$RUNS/stage2-vist-seed$seed" "$DEST/stage1" "$seed" --scene-caption-weight 1
done
for seed in 43 44; do
  # shellcheck disable=SC2086
  done_run "$RUNS/stage2-vist-single-stage-seed$seed" || $PY -m reference_model.train stage2 --task vist \
    --single-stage --backbones "$B" --data "$WORLD/VIST" --out "$RUNS/stage2-vist-single-stage-seed$seed" \
    $S2_RECIPE --seed "$seed" --scene-caption-weight 1
done
stage1_parent "$RUNS/stage1-no-cfg" 2ebdbcfd6bfa61844ce03a417975ad9ccd00205a0dc3c9470b91e242adb12a55 --no-cfg
for seed in 43 44; do
  stage2 vist "$RUNS/stage2-vist-no-cfg-seed$seed" "$RUNS/stage1-no-cfg" "$seed" --no-cfg --scene-caption-weight 1
done
stage1_parent "$RUNS/stage1-no-caption-loss" eb804bf4a63dda1bf301159029a1959271ae5cad6662d51ac9d334b6a6a05e59 \
  --no-caption-loss
for seed in 43 44; do
  stage2 vist "$RUNS/stage2-vist-no-caption-loss-seed$seed" "$RUNS/stage1-no-caption-loss" "$seed" --no-caption-loss
done
# the shipped stage2-mmdialog is seed 43
for seed in 42 44; do
  stage2 mmdialog "$RUNS/stage2-mmdialog-seed$seed" "$DEST/stage1" "$seed" --scene-caption-weight 1
done
# the shipped divter-mmdialog is seed 0
for seed in 1 2; do
  [ -f "$RUNS/divter-mmdialog-seed$seed/divter_config.json" ] || OMP_NUM_THREADS=1 $PY -m mg5bench train divter \
    --task mmdialog --out "$RUNS/divter-mmdialog-seed$seed" --steps 400 --batch 16 --lr 1e-3 --base "$B" \
    --seed "$seed" --device cpu
done
echo "all seeds trained"
