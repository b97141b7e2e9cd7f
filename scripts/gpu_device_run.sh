#!/usr/bin/env bash
# What the device tool runs: scripts/gpu_experiment.sh under a hard time limit, then the few files worth
# bringing back (the device tool returns at most 8 files from $OUT). Usage, from the checkout:
#   run(command="LIMIT_S=540 GAN_MINUTES=2.5 scripts/gpu_device_run.sh", carry=[".gpucache", ".whl"], timeout_s=590)
set -uo pipefail
cd "$(dirname "$0")/.."
BACK=${OUT:-gpu-experiment-back}
WORK=${WORK:-/tmp/gpu-experiment}
mkdir -p "$BACK" "$WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$BACK/gpu_experiment.log"
timeout "${LIMIT_S:-500}" scripts/gpu_experiment.sh .gpucache/fer2013-packed.npz "$WORK" 2>&1 | tee -a "$BACK/gpu_experiment.log"
echo "exit status: ${PIPESTATUS[0]}" | tee -a "$BACK/gpu_experiment.log"
cp "$WORK/report/REPORT.md" "$WORK/report/results.json" "$WORK/report/recall_by_condition.png" "$BACK/" 2>/dev/null
cp "$WORK/gan/eval/metrics.json" "$BACK/gan_eval.json" 2>/dev/null
last=$(ls "$WORK"/gan/samples/*.png 2>/dev/null | tail -n 1)
[ -n "$last" ] && cp "$last" "$BACK/gan_samples.png"
cp "$WORK/gan/eval/judge.png" "$BACK/gan_judge.png" 2>/dev/null
exit 0
