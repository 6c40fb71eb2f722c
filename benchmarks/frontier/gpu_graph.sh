#!/usr/bin/env bash
# The ladder on a GPU with each training step replayed as one CUDA graph, in one go:
#  1. graph_check.py: the graphed step's weights against ordinary steps (stops here if they
#     part), and training images/s of both;
#  2. the 94% rung's candidates on the 48,000/12,000 split, one after another alone on the GPU;
#  3. choose.py: the fastest clearing 94.3 on validation; the 94% rung's ladder (5 seeds);
#  4. the 90-93% rungs' ladder (5 seeds);
#  5. toward 95%: three members of speed_l with erasing averaged (ensemble.py), on validation;
#  6. the 95% rung's best candidate (gpu95), 3 seeds.
# Usage: benchmarks/frontier/gpu_graph.sh OUT_DIR  (caps in seconds: CHECK_S, EXPLORE_S, T94,
# T90, ENSEMBLE_S, T95; CHECK_S=0 leaves step 1 out)
set -u
out=${1:?usage: benchmarks/frontier/gpu_graph.sh OUT_DIR}
py=${PYTHON:-python3}
fr=benchmarks/frontier
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
stamp() { date -u +%FT%TZ; }

nvidia-smi -L
$py -c 'import torch; print("torch", torch.__version__, torch.cuda.get_device_name(0))'
stamp
if [ "${CHECK_S:-150}" != 0 ]; then  # CHECK_S=0: checked already
    timeout "${CHECK_S:-150}" $py $fr/graph_check.py "$out/graph-check.json" \
        --recipes rung94 rung90 gpu94
    rc=$?
    echo "graph_check rc $rc"
    [ "$rc" = 1 ] && exit 1
    stamp
fi
timeout "${EXPLORE_S:-120}" $py $fr/explore.py "$out/explore.jsonl" --device cuda \
    qw64d2_flip_wd50_nbd_e10 qw64d2_flip_wd50_nbd_e12 sp16x32_flip_wd50_nbd_e10 \
    gpu_wide_cnn64_flip_e15
stamp
choice=$(mktemp -d)
$py $fr/choose.py "$out/explore.jsonl" "$choice" --rungs 94 && cat "$choice/gpu94.json"
timeout "${T94:-120}" $py -m fmnist bench --ladder --device cuda --rungs 94 \
    --recipe "94=$choice/gpu94.json" --compare --json "$out/ladder-94.json"
stamp
timeout "${T90:-100}" $py -m fmnist bench --ladder --device cuda --rungs 90 92 93 --compare \
    --json "$out/ladder-90-93.json"
stamp
timeout "${ENSEMBLE_S:-100}" $py $fr/ensemble.py "$out/ensemble.jsonl" sp16x32_fe_wd50_nbd_e24 3
stamp
timeout "${T95:-110}" $py -m fmnist bench --ladder --device cuda --rungs 95 --compare \
    --json "$out/ladder-95.json"
stamp
