#!/usr/bin/env bash
# The ladder on a GPU in one go, the recipes of its 94% and 95% rungs chosen on validation:
#  1. training images/s of each candidate model and batch size, alone on the GPU (2 epochs);
#  2. the gpu_* candidates of explore.py on the 48,000/12,000 split, JOBS processes sharing
#     the GPU (their accuracies are used, not their times);
#  3. choose.py: per rung, the fastest candidate clearing it by 0.3 on validation;
#  4. fmnist bench --ladder on all 60,000 images, one rung at a time, each alone on the GPU.
# Usage: benchmarks/frontier/gpu.sh OUT_DIR [JOBS]
# (caps in seconds: PROBE_S step 1, EXPLORE_S step 2, T94, T95 and T90 the ladder's runs)
set -u
out=${1:?usage: benchmarks/frontier/gpu.sh OUT_DIR [JOBS]}
jobs=${2:-6}
py=${PYTHON:-python3}
ex=benchmarks/frontier/explore.py
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1

nvidia-smi -L
$py -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
date -u +%FT%TZ
timeout "${PROBE_S:-70}" $py $ex "$out/explore.jsonl" --device cuda \
    gpu_wide_cnn_e2 gpu_wide_cnn_b256_e2 gpu_wide_cnn64_e2 gpu_wide_cnn64_b256_e2 gpu_wide_cnn96_e2
date -u +%FT%TZ
pids=()
for i in $(seq 0 $((jobs - 1))); do
    timeout "${EXPLORE_S:-180}" $py $ex "$out/explore.jsonl" --device cuda --share "$i/$jobs" \
        'gpu_*_e[1-9][0-9]' >/dev/null &
    pids+=($!)
done
wait "${pids[@]}"  # these only: a bare wait would also wait for the log's tee
date -u +%FT%TZ
$py benchmarks/frontier/choose.py "$out/explore.jsonl" "$out" --prefix gpu_ --rungs 94 95
for rung in 94 95; do
    cap=T$rung
    timeout "${!cap:-$((rung == 94 ? 70 : 160))}" $py -m fmnist bench --ladder --device cuda \
        --rungs $rung --recipe "$rung=$out/gpu$rung.json" --compare --json "$out/ladder-$rung.json"
done
timeout "${T90:-100}" $py -m fmnist bench --ladder --device cuda --rungs 90 92 93 \
    --compare fast tuned best --compare-budget "${COMPARE_S:-20}" --json "$out/ladder-90-93.json"
date -u +%FT%TZ
