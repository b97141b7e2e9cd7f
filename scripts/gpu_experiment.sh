#!/usr/bin/env bash
# The FER2013 experiments on one GPU, every budget in steps or images seen (never minutes):
#   prepare (from a packed cache that travels with the checkout)
#   -> gan-train: the noise generator (default recipe, GAN_STEPS) and the expression-transfer generator
#      (--recipe transfer, TRANSFER_STEPS), each keeping its best checkpoint on validation
#   -> gan-eval of each (500 faces per class; the transfer run adds identity kept and expression changed), both
#      graded by the noise run's grading judge (a ResNet18; the transfer G learns from its own fer-cnn guide)
#   -> compare at BUDGET for MODELS: screening on validation (1 seed) of the real-only fixes, gan+oversample
#      and the transfer conditions, then the final grid on test (SEEDS seeds): baseline, oversample,
#      gan+oversample and the screening's best two transfer conditions.
# Every stage resumes when the script is run again with the same OUT (gan-train from its checkpoint, compare
# keeps finished runs), so a grid longer than one call of the device tool finishes over several calls. Each
# stage also has a safety stop in seconds (the device lends minutes): gan-train stops cleanly after
# GAN_MINUTES, the others are killed after STAGE_S and resume on a rerun.
# MODE=gan runs the generator stages, MODE=compare the compare stages, MODE=all both.
#
# Make the packed cache once, where the data is (about 43 MB, git-ignored), and fetch pytorch-fid's wheel:
#   augment prepare ../shared/data/fer2013 --out .gpucache/fer2013-packed.npz --packed
#   pip download --no-deps --only-binary=:all: -d .whl pytorch-fid==0.3.0
# Then, on the GPU machine, from the checkout:
#   scripts/gpu_experiment.sh [.gpucache/fer2013-packed.npz] [OUT]
# Knobs (environment): MODE (all), DEVICE (cuda), GAN_STEPS (6000), TRANSFER_STEPS (20000), GAN_MINUTES (3),
# BUDGET (full), MODELS (fer-cnn,resnet18,resemotenet), SEEDS (3), STAGE_S (seconds per non-GAN stage, 300),
# PY (python3). Without the package installed it runs from the checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:-.gpucache/fer2013-packed.npz}
OUT=${2:-${OUT:-gpu-experiment}}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
GAN_STEPS=${GAN_STEPS:-6000}
TRANSFER_STEPS=${TRANSFER_STEPS:-20000}
GAN_MINUTES=${GAN_MINUTES:-3}
BUDGET=${BUDGET:-full}
MODELS=${MODELS:-fer-cnn,resnet18,resemotenet}
SEEDS=${SEEDS:-3}
STAGE_S=${STAGE_S:-300}
MODE=${MODE:-all}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
A="$PY -m augment"
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }
limit() { timeout "$STAGE_S" "$@" || stamp "stopped or failed (status $?): $*"; }

if ! $PY -c "import pytorch_fid" 2>/dev/null; then  # the GPU image lacks it; carry the wheel in .whl/
  if ls .whl/pytorch_fid-*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --target /tmp/augment-site .whl/pytorch_fid-*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/augment-site"
  fi
fi
$PY -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
stamp "prepare"
[ -f "$OUT/fer2013.npz" ] || $A prepare "$CACHE" --out "$OUT/fer2013.npz"

if [ "$MODE" != compare ]; then
  stamp "gan-train noise generator, $GAN_STEPS steps (its grading judge is trained first and shared)"
  $A gan-train "$OUT/fer2013.npz" --out "$OUT/gan" --steps "$GAN_STEPS" --device "$DEVICE" --sample-every 1000 \
    --max-minutes "$GAN_MINUTES" || stamp "gan-train failed"
  stamp "gan-train expression transfer, $TRANSFER_STEPS steps"
  $A gan-train "$OUT/fer2013.npz" --out "$OUT/transfer" --recipe transfer --steps "$TRANSFER_STEPS" \
    --device "$DEVICE" --sample-every 2000 --select-every 2000 --max-minutes "$GAN_MINUTES" \
    --judge "$OUT/gan/judge-grading" || stamp "gan-train transfer failed"
  for run in "$OUT/gan" "$OUT/transfer"; do
    [ -f "$run/checkpoint.pt" ] || continue
    stamp "gan-eval $run"
    limit $A gan-eval "$run" "$OUT/fer2013.npz" --per-class 500 --judge "$OUT/gan/judge-grading" \
      --device "$DEVICE" | tail -n 30
  done
fi
[ "$MODE" = gan ] && { stamp "done (MODE=gan)"; exit 0; }

RUNS=(--generator "$OUT/gan" --transfer "$OUT/transfer")
stamp "compare screening on validation (budget $BUDGET, 1 seed)"
limit $A compare "$OUT/fer2013.npz" "${RUNS[@]}" --out "$OUT/screen" --budget "$BUDGET" --eval-split val \
  --models "$MODELS" --seeds 1 --device "$DEVICE" \
  --conditions baseline,oversample,weighted,gan+oversample,transfer,transfer+oversample,transfer-cap1
BEST2=$($PY - "$OUT/screen/results.json" <<'PY'
import json, sys
try:
    runs = json.load(open(sys.argv[1]))["runs"]
except (OSError, KeyError, ValueError):
    runs = []
scores = {}
for r in runs:
    if r["condition"].startswith("transfer"):
        scores.setdefault(r["condition"], []).append(r["macro_f1"])
ranked = sorted(scores, key=lambda c: -sum(scores[c]) / len(scores[c]))
print(",".join(ranked[:2]) or "transfer,transfer+oversample")
PY
)
stamp "compare final grid on test (budget $BUDGET, $SEEDS seeds; the transfer conditions: $BEST2)"
limit $A compare "$OUT/fer2013.npz" "${RUNS[@]}" --out "$OUT/final" --budget "$BUDGET" --models "$MODELS" \
  --conditions "baseline,oversample,gan+oversample,$BEST2" --seeds "$SEEDS" --device "$DEVICE"

stamp "throughput"
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for log in sorted(out.glob("*/metrics.jsonl")):
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
    steps = [r for r in rows if "images_per_s" in r]
    if steps:
        print(f"{log.parent.name}: {steps[-1]['step']} steps, last logged {steps[-1]['images_per_s']:,.0f} images/s")
for s in sorted(out.glob("*/runs/*/*/seed*/result.json")):
    r = json.loads(s.read_text())
    print(f"train {s.parent.relative_to(out)}: {r.get('images_per_s', 0):,.0f} images/s, {r['seconds']:.0f} s")
PY
for report in "$OUT/screen" "$OUT/final"; do
  [ -f "$report/REPORT.md" ] && { stamp "table: $report"; sed -n '/^## Verdict/,/^## Pictures/p' "$report/REPORT.md"; }
done
stamp "done"
