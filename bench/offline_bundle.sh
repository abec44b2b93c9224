#!/usr/bin/env bash
# Pack what bench/device_checks.sh needs on a GPU machine that has Python and torch but no Java and
# no package registry (the usual isolated training node):
#
#   OUT/jre.tar.xz   a jlink Java runtime with the modules the Kafka broker uses, and the broker's
#                    jars from the adaptcast cache (repacked uncompressed, so xz shrinks them: ~32 MB)
#   OUT/wheels/      wheels of adaptcast's runtime dependencies that such an image usually lacks,
#                    at the versions installed here, for the target's Python (PYVER, default 3.12)
#
# On the target, from a copy of the repository with OUT beside it:
#   pip install --no-index --no-deps --target /tmp/site OUT/wheels/*.whl
#   for d in forecast streams drift deploy; do ln -sfn ../$d adaptcast/$d; done   # importable in place
#   mkdir -p /tmp/jt && tar -xJf OUT/jre.tar.xz -C /tmp/jt
#   PYTHONPATH=/tmp/site:$PWD PY=python3 JAVA_HOME=/tmp/jt/java ADAPTCAST_CACHE_DIR=/tmp/jt/kafka \
#       bash bench/device_checks.sh
#
# Settings: OUT (default .offline), JDK (a JDK with jlink; default: the one `java` belongs to),
# PY (the Python whose installed versions are packed; default .venv/bin/python), PYVER, DRY_RUN=1.
set -euo pipefail
OUT=${OUT:-.offline}
PY=${PY:-.venv/bin/python}
PYVER=${PYVER:-3.12}
JDK=${JDK:-$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")}
# The modules the broker and its storage tool start with (without java.desktop, log4j fails on
# java.beans.PropertyChangeEvent).
MODULES=java.base,java.desktop,java.instrument,java.logging,java.management,java.naming,java.net.http,\
java.scripting,java.security.jgss,java.security.sasl,java.sql,java.xml,jdk.crypto.ec,jdk.management,\
jdk.security.auth,jdk.unsupported,jdk.zipfs
# Runtime dependencies a CUDA/PyTorch image does not ship (torch, lightning, numpy, scipy, matplotlib,
# prometheus-client, pyyaml, tqdm and filelock it usually does); xgboost as its CPU-only build.
PACKAGES=(kafka-python crc32c lz4 python-snappy cramjam zstandard orjson xgboost ncps polars
    polars-runtime-32 pydantic pydantic-core annotated-types typing-inspection typing-extensions click future)

run() { if [ "${DRY_RUN:-0}" = 1 ]; then echo "$*"; else "$@"; fi; }

LIB=$("$PY" -c 'from adaptcast.deploy.kafka.jars import jar_dir, jars_ready; import sys
d = jar_dir(); sys.exit("no broker jars: run `python -m adaptcast.deploy.kafka fetch` first") if not jars_ready(d) else print(d)')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run mkdir -p "$OUT/wheels"
run "$JDK/bin/jlink" --add-modules "$MODULES" --strip-debug --no-header-files --no-man-pages \
    --output "$work/java"
kafka="$work/kafka/$(basename "$(dirname "$LIB")")"
run mkdir -p "$kafka"
run cp -r "$LIB" "$kafka/"
if [ "${DRY_RUN:-0}" != 1 ]; then
    for jar in "$kafka"/lib/*.jar; do  # stored, not deflated: xz then packs the classes far tighter
        rm -rf "$work/x" && mkdir "$work/x" && (cd "$work/x" && unzip -q "$jar") && rm "$jar"
        (cd "$work/x" && zip -q -0 -r -X "$jar" .)
    done
fi
run tar -C "$work" -cJf "$OUT/jre.tar.xz" java kafka

for name in "${PACKAGES[@]}"; do
    version=$("$PY" -m pip show "$name" 2>/dev/null | sed -n 's/^Version: //p')
    [ -n "$version" ] || { echo "skipped $name: not installed in $PY" >&2; continue; }
    [ "$name" = xgboost ] && name=xgboost-cpu  # the same package without the CUDA build's 300 MB
    run "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d "$OUT/wheels" "$name==$version"
done
[ "${DRY_RUN:-0}" = 1 ] || du -sh "$OUT/jre.tar.xz" "$OUT/wheels"
