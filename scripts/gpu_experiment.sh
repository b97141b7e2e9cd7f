#!/usr/bin/env bash
# The FER2013 experiments on one GPU, every budget in steps or images seen (never minutes):
#   prepare (from a packed cache that travels with the checkout)
#   → gan-train: the default recipe, 6,000 steps, best checkpoint on validation (issue 12)
#   → gan-train: the issue-13 variants (colour p, ADA, LeCam, transitional conditioning, mode seeking), same steps
#   → gan-eval of each (500 samples per class)
#   → compare --budget cpu on the GPU: screening on validation (1 seed), then the final grid on test (3 seeds)
# The budgets are steps and images; the device lends minutes, so each stage also has a safety stop: gan-train
# stops cleanly (checkpoint, and a best-checkpoint score where it stopped) after GAN_MINUTES, other stages are
# killed after STAGE_S and resume on a rerun. MODE=gan runs the GAN stages, MODE=compare the compare stages,
# MODE=all both (a 10-minute call fits MODE=gan with two variants; MODE=compare needs its own call).
#
# Make the packed cache once, where the data is (43 MB, git-ignored), and fetch pytorch-fid's wheel:
#   augment prepare ../shared/data/fer2013 --out .gpucache/fer2013-packed.npz --packed
#   pip download --no-deps --only-binary=:all: -d .whl pytorch-fid==0.3.0
# Then, on the GPU machine, from the checkout:
#   scripts/gpu_experiment.sh [.gpucache/fer2013-packed.npz] [OUT]
# Knobs (environment): MODE (all), DEVICE (cuda), GAN_STEPS (6000), GAN_MINUTES (2), VARIANTS (name:options,
# separated by ';': the recipe before issue 13 (every face coloured, no mode seeking, no LeCam), today's
# without LeCam, exposure normalisation; '' = none), SEEDS (3), STAGE_S (seconds
# per non-GAN stage, 150), PY (python3). Without the package installed it runs from the checkout.
set -uo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:-.gpucache/fer2013-packed.npz}
OUT=${2:-${OUT:-gpu-experiment}}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
GAN_STEPS=${GAN_STEPS:-6000}
SEEDS=${SEEDS:-3}
STAGE_S=${STAGE_S:-150}
MODE=${MODE:-all}
GAN_MINUTES=${GAN_MINUTES:-2}
VARIANTS=${VARIANTS-"old:--color-p 1 --ms-weight 0 --lecam-weight 0;no-lecam:--lecam-weight 0;expo:--exposure-norm"}
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
stamp "gan-train default recipe, $GAN_STEPS steps (its grading judge is trained first and shared)"
$A gan-train "$OUT/fer2013.npz" --out "$OUT/gan" --steps "$GAN_STEPS" --device "$DEVICE" --sample-every 1000 \
  --max-minutes "$GAN_MINUTES" || stamp "gan-train failed"
IFS=';' read -ra VARIANT_LIST <<< "$VARIANTS"  # name:options, separated by ';' (options hold spaces)
for v in "${VARIANT_LIST[@]}"; do
  name=${v%%:*}; opts=${v#*:}
  stamp "gan-train variant $name ($opts)"
  # shellcheck disable=SC2086
  $A gan-train "$OUT/fer2013.npz" --out "$OUT/gan-$name" --steps "$GAN_STEPS" --device "$DEVICE" \
    --sample-every 1000 --max-minutes "$GAN_MINUTES" --judge "$OUT/gan/judge-grading" $opts || stamp "failed"
done
for run in "$OUT"/gan "$OUT"/gan-*; do
  [ -f "$run/checkpoint.pt" ] || continue
  stamp "gan-eval $run"
  limit $A gan-eval "$run" "$OUT/fer2013.npz" --per-class 500 --judge "$OUT/gan/judge-grading" --device "$DEVICE" \
    | tail -n 30
done
fi
[ "$MODE" = gan ] && { stamp "done (MODE=gan)"; exit 0; }

CLASSIC=baseline,oversample,weighted,refit
SYNTH=gan,gan-cap0.25,gan-cap0.5,gan-cap1,gan-cap2,gan-w,gan+oversample,gan-refit
stamp "compare screening on validation (budget cpu, 1 seed)"
limit $A compare "$OUT/fer2013.npz" --generator "$OUT/gan" --out "$OUT/screen" --budget cpu --eval-split val \
  --conditions "$CLASSIC,$SYNTH" --seeds 1 --device "$DEVICE"
stamp "compare final grid on test (budget cpu, $SEEDS seeds; the synthetic strategies are the screening's best two)"
BEST2=$($PY - "$OUT/screen/results.json" <<'PY'
import json, sys
try:
    runs = json.load(open(sys.argv[1]))["runs"]
except (OSError, KeyError, ValueError):
    runs = []
scores = sorted(((r["macro_f1"], r["condition"]) for r in runs if r["condition"].startswith("gan")), reverse=True)
print(",".join(c for _, c in scores[:2]) or "gan-cap0.5,gan-refit")
PY
)
limit $A compare "$OUT/fer2013.npz" --generator "$OUT/gan" --out "$OUT/final" --budget cpu \
  --conditions "$CLASSIC,$BEST2" --seeds "$SEEDS" --device "$DEVICE"

stamp "throughput"
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for log in sorted(out.glob("gan*/metrics.jsonl")):
    rows = [json.loads(l) for l in log.read_text().splitlines() if l.strip()]
    steps = [r for r in rows if "images_per_s" in r]
    if steps:
        print(f"{log.parent.name}: {steps[-1]['step']} steps, last logged {steps[-1]['images_per_s']:,.0f} images/s")
for s in sorted(out.glob("*/runs/*/*/seed*/summary.json")):
    r = json.loads(s.read_text())
    print(f"train {s.parent.relative_to(out)}: {r['images_per_s']:,.0f} images/s, {r['seconds']:.0f} s")
PY
for report in "$OUT/screen" "$OUT/final"; do
  [ -f "$report/REPORT.md" ] && { stamp "table: $report"; sed -n '/^## Verdict/,/^## Pictures/p' "$report/REPORT.md"; }
done
stamp "done"
