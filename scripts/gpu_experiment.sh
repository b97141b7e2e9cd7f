#!/usr/bin/env bash
# The real experiment on FER2013 on one GPU, in about 8 minutes of an H100:
#   prepare (from a packed cache that travels with the checkout) → gan-train → gan-eval → rebalance
#   → compare (ResNet18 and ResEmoteNet; baseline vs GAN-rebalanced vs class-weighted).
# It prints images/s of each stage and the final table.
#
# Make the packed cache once, where the data is (43 MB, git-ignored), and fetch pytorch-fid's wheel:
#   augment prepare ../shared/data/fer2013 --out .gpucache/fer2013-packed.npz --packed
#   pip download --no-deps --only-binary=:all: -d .whl pytorch-fid==0.3.0
# With the device tool: run(command="scripts/gpu_experiment.sh", carry=[".gpucache", ".whl"]).
# Then, on the GPU machine, from the checkout:
#   scripts/gpu_experiment.sh [.gpucache/fer2013-packed.npz] [OUT]
# Knobs (environment): DEVICE (cuda), GAN_MINUTES (3), GAN_STEPS (20000), SEEDS (2), BUDGET (gpu-small),
# PY (python3). On a machine without the package installed it runs from the checkout (PYTHONPATH=.).
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=${1:-.gpucache/fer2013-packed.npz}
OUT=${2:-${OUT:-gpu-experiment}}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
GAN_MINUTES=${GAN_MINUTES:-3}
GAN_STEPS=${GAN_STEPS:-20000}
SEEDS=${SEEDS:-2}
BUDGET=${BUDGET:-gpu-small}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
A="$PY -m augment"
mkdir -p "$OUT"
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*"; }

if ! $PY -c "import pytorch_fid" 2>/dev/null; then  # the GPU image lacks it; carry the wheel in .whl/
  if ls .whl/pytorch_fid-*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --target /tmp/augment-site .whl/pytorch_fid-*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/augment-site"
  else
    echo "pytorch-fid is missing: pip download --no-deps -d .whl pytorch-fid==0.3.0 (here), then carry .whl" >&2
    exit 2
  fi
fi
$PY - <<'PY'
import torch
print("torch", torch.__version__, "| cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
PY
stamp "prepare"
[ -f "$OUT/fer2013.npz" ] || $A prepare "$CACHE" --out "$OUT/fer2013.npz"
$A inspect "$OUT/fer2013.npz" --plot "$OUT/class_distribution.png" | tail -n 25

stamp "gan-train (full recipe, bf16, up to $GAN_MINUTES min)"
$A gan-train "$OUT/fer2013.npz" --out "$OUT/gan" --steps "$GAN_STEPS" --batch-size 128 --g-width 48 --d-width 48 \
  --max-minutes "$GAN_MINUTES" --sample-every 2000 --checkpoint-every 1000 --device "$DEVICE"

stamp "gan-eval (judge: a ResNet18 trained on the real training images)"
$A gan-eval "$OUT/gan" "$OUT/fer2013.npz" --per-class 500 --device "$DEVICE"

stamp "rebalance (target max, judge filter p >= 0.3, near-copies dropped)"
# A generator too weak for the filter should not cost the comparison: report it and go on.
$A rebalance "$OUT/fer2013.npz" --generator "$OUT/gan" --out "$OUT/rebalanced" --target max --device "$DEVICE" \
  --overwrite | tail -n 20 || stamp "rebalance failed (above); the comparison still runs"

stamp "compare (budget $BUDGET, $SEEDS seeds)"
$A compare "$OUT/fer2013.npz" --generator "$OUT/gan" --out "$OUT/report" --models resnet18,resemotenet \
  --conditions baseline,gan,weighted --seeds "$SEEDS" --budget "$BUDGET" --device "$DEVICE"

stamp "throughput"
$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
log = out / "gan" / "metrics.jsonl"
gan = [json.loads(l) for l in log.read_text().splitlines() if l.strip()] if log.is_file() else []
if gan:
    print(f"gan-train: {gan[-1]['step']} steps, last logged {gan[-1]['images_per_s']:,.0f} images/s")
for s in sorted((out / "report" / "runs").glob("*/*/seed*/summary.json")):
    r = json.loads(s.read_text())
    print(f"train {s.parent.relative_to(out / 'report' / 'runs')}: {r['images_per_s']:,.0f} images/s, "
          f"{r['epochs_done']} epochs in {r['seconds']:.0f} s")
PY
stamp "final table"
sed -n '/^## Verdict/,/^## Pictures/p' "$OUT/report/REPORT.md"
stamp "done: $OUT/report/REPORT.md"
