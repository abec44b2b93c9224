#!/usr/bin/env bash
# Every GPU check of issue 19, for a session lent a device machine (about 15 minutes of device time,
# start-up included). Two groups, so that each can travel with only what it needs:
#
#   live      the live bench with a neural model (LSTM) predicting on the GPU: needs a Kafka broker
#             (Java and the broker's jars, or KAFKA_BOOTSTRAP_SERVERS);
#   informer  (1) Informer and MIMO-VP training throughput, fp32 and bf16, against the GPU's bf16 peak;
#             (2) the remaining Informer ETTh1 rows: univariate horizons 168, 336 and 720;
#             (3) seeds 1 and 2 of the multivariate column at horizons 168, 336 and 720.
#
# Run from the repository root: `bash bench/device_checks.sh [live] [informer]` (both by default).
# Each check writes its JSON (and a log) under $OUT and the script goes on when one fails; a summary
# line per check gives its exit status. The Informer rows start from a copy of
# bench/results/informer_ett.json, so rows already there are not trained again; merge $OUT's copy back.
# Settings:
#   PY    the Python with adaptcast importable (default .venv/bin/python)
#   DATA  the ETTh1 CSV (default ../shared/data/ett/ETTh1.csv); rows (2)-(3) are skipped without it
#   OUT   where the results go (default bench/results/device)
#   DRY_RUN=1  print the commands instead of running them
#
#   OUT=$OUT bash bench/device_checks.sh           # on the device machine
#   DRY_RUN=1 bash bench/device_checks.sh informer  # anywhere: what it would run
set -u
PY=${PY:-.venv/bin/python}
DATA=${DATA:-../shared/data/ett/ETTh1.csv}
OUT=${OUT:-bench/results/device}
GROUPS_=${*:-live informer}
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
for group in $GROUPS_; do
    case $group in
    live)
        check live_gpu_lstm 150 "$PY" bench/live_throughput.py --model lstm --rates 1000 --latency-seconds 10
        ;;
    informer)
        check gpu_transformers 150 "$PY" bench/gpu_transformers.py --no-cpu --data "$DATA"
        if [ -f "$DATA" ] || [ "${DRY_RUN:-0}" = 1 ]; then
            rows="$OUT/informer_ett.json"
            [ "${DRY_RUN:-0}" = 1 ] || cp bench/results/informer_ett.json "$rows"
            # bf16 autocast, as the CPU rows already in the table; one fit at most 2.5 minutes
            common=(--device gpu --precision bf16-mixed --data "$DATA" --max-minutes 2.5 --out "$rows")
            check informer_univariate 200 "$PY" bench/informer_ett.py "${common[@]}" \
                --modes univariate --horizons 168,336,720 --jobs 3
            check informer_multivariate_seeds 200 "$PY" bench/informer_ett.py "${common[@]}" \
                --modes multivariate --horizons 168,336,720 --seeds 1,2 --jobs 6
        else
            echo "informer rows skipped: no ETTh1 CSV at $DATA (set DATA)"
        fi
        ;;
    *)
        echo "unknown group $group (live or informer)" >&2
        exit 2
        ;;
    esac
done
