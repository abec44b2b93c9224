#!/usr/bin/env bash
# Every GPU check of issue 19 in one go, for a session lent a device machine (about 15 minutes of
# device time, start-up included: the checks below are capped at 11 minutes together).
#
#   1. Informer and MIMO-VP training throughput, fp32 and bf16, against the GPU's bf16 peak;
#   2. the live bench with a neural model (LSTM) predicting on the GPU;
#   3. the remaining Informer ETTh1 rows: univariate horizons 168, 336 and 720 (current maths);
#   4. seeds 1 and 2 of the multivariate column.
#
# Run from the repository root. Each check writes its JSON (and a log) under $OUT and the script
# goes on when one fails; a summary line per check says its exit status. Settings:
#   PY    the Python with adaptcast installed (default .venv/bin/python)
#   DATA  the ETTh1 CSV (default ../shared/data/ett/ETTh1.csv); checks 3-4 are skipped without it
#   OUT   where the results go (default bench/results/device)
#   DRY_RUN=1  print the commands instead of running them
# The live bench starts its own Kafka broker: it needs Java and the broker's jars, cached where
# ADAPTCAST_CACHE_DIR points (docs/benchmarks.md), or KAFKA_BOOTSTRAP_SERVERS.
#
#   OUT=$OUT bash bench/device_checks.sh        # on the device machine
#   DRY_RUN=1 bash bench/device_checks.sh       # anywhere: what it would run
set -u
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/ett/ETTh1.csv}
OUT=${OUT:-bench/results/device}
export PYTHONUNBUFFERED=1

check() {  # NAME LIMIT_S COMMAND...: run one check, stdout to $OUT/NAME.json, stderr to $OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    if [ "${DRY_RUN:-0}" = 1 ]; then
        echo "$*"
        return
    fi
    local start=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.json" 2>"$OUT/$name.log"
    echo "$name: exit $? after $((SECONDS - start)) s (limit $limit s)"
}

[ "${DRY_RUN:-0}" = 1 ] || {
    mkdir -p "$OUT"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$OUT/gpu.csv" 2>&1
}
check gpu_transformers 150 "$PY" bench/gpu_transformers.py --no-cpu
check live_gpu_lstm 150 "$PY" bench/live_throughput.py --model lstm --rates 1000 --latency-seconds 10
if [ -f "$DATA" ] || [ "${DRY_RUN:-0}" = 1 ]; then
    check informer_univariate 180 "$PY" bench/informer_ett.py --device gpu --data "$DATA" \
        --modes univariate --horizons 168,336,720 --jobs 3 --out "$OUT/informer_ett.json"
    check informer_multivariate_seeds 180 "$PY" bench/informer_ett.py --device gpu --data "$DATA" \
        --modes multivariate --seeds 1,2 --jobs 5 --out "$OUT/informer_ett.json"
else
    echo "informer checks skipped: no ETTh1 CSV at $DATA (set DATA)"
fi
