#!/usr/bin/env bash
# What the device tool runs: scripts/gpu_experiment.sh under a hard time limit, then what is worth bringing
# back (few files: the small ones packed in one tarball). Usage, from the checkout, two calls back to back
# (the lent machine keeps /tmp only while it stays warm, about 30 s between calls):
#   run(command="MODE=gan LIMIT_S=560 scripts/gpu_device_run.sh", carry=[".gpucache", ".whl"], timeout_s=590)
#   run(command="MODE=compare LIMIT_S=560 scripts/gpu_device_run.sh", carry=[".gpucache", ".whl"], timeout_s=590)
set -uo pipefail
cd "$(dirname "$0")/.."
BACK=${OUT:-gpu-experiment-back}
WORK=${WORK:-/tmp/gpu-experiment}
mkdir -p "$BACK" "$WORK"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$BACK/gpu_experiment.log"
timeout "${LIMIT_S:-560}" scripts/gpu_experiment.sh .gpucache/fer2013-packed.npz "$WORK" 2>&1 | tee -a "$BACK/gpu_experiment.log"
echo "exit status: ${PIPESTATUS[0]}" | tee -a "$BACK/gpu_experiment.log"
(cd "$WORK" && tar czf "$OLDPWD/$BACK/results.tgz" --ignore-failed-read \
  gan/eval/metrics.json transfer/eval/metrics.json gan/metrics.jsonl transfer/metrics.jsonl \
  gan/config.json transfer/config.json screen/REPORT.md screen/results.json \
  final/REPORT.md final/results.json 2>/dev/null)
last=$(ls "$WORK"/gan/samples/*.png 2>/dev/null | tail -n 1)
[ -n "$last" ] && cp "$last" "$BACK/gan_samples.png"
cp "$WORK/gan/eval/usefulness.png" "$BACK/gan_usefulness.png" 2>/dev/null
cp "$WORK/transfer/eval/transfer.png" "$BACK/transfer_pairs.png" 2>/dev/null
cp "$WORK/final/recall_by_condition.png" "$BACK/final_recall.png" 2>/dev/null
exit 0
