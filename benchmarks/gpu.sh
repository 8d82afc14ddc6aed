#!/usr/bin/env bash
# The issue-15 figures on one GPU, printed as lines to paste into a note.
#
# 1. Memory of one posterior gradient (10-step PM, Poisson counts, float32) at 128^3 and 256^3,
#    cosmolaw and JaxPM (diffrax, its default checkpointed adjoint), measured for real: each leg
#    runs in its own process, compiles, runs the gradient (median of 3 timed calls after a
#    warm-up, seconds) and reports the device's peak memory (memory_stats()["peak_bytes_in_use"],
#    GB = 1e9 bytes, compiler scratch included); beside it XLA's compiled memory analysis on the
#    same device (benchmarks/fieldlevel_scale.py --peak).
# 2. The same legs compile-only (fieldlevel_scale.py without --peak): the GPU's own memory
#    analysis, to set against the CPU figures of the note (128^3 to 512^3, 512^3 on 1024^3).
# 3. benchmarks/pm_vs_jaxpm.py at 128^3 (box 4 Mpc/h per cell, as its 64^3 default): forward
#    and gradient times, memory, and the cost at equal accuracy.
#
# Usage: benchmarks/gpu.sh [--meshes "128 256"] [--pm-mesh 128] [--out DIR] [--allow-cpu]
#   --allow-cpu runs without a GPU (a dry run at a small mesh, e.g. --meshes 16 --pm-mesh 16).
# Each part has a time limit (PART_TIMEOUT seconds, default 240) so that a 10-minute lease
# leaves room to rerun; a part that runs out prints what it had.
set -uo pipefail
cd "$(dirname "$0")/.."

meshes="128 256"
pm_mesh=128
out="${TMPDIR:-/tmp}/cosmolaw-gpu"
allow_cpu=0
timeout_s="${PART_TIMEOUT:-240}"
while [ $# -gt 0 ]; do
    case "$1" in
        --meshes) meshes="$2"; shift 2 ;;
        --pm-mesh) pm_mesh="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --allow-cpu) allow_cpu=1; shift ;;
        *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done

backend=$(python -c 'import jax; print(jax.default_backend())')
if [ "$backend" != "gpu" ] && [ "$allow_cpu" = 0 ]; then
    echo "JAX backend is '$backend', not gpu: install jax[cuda12], or pass --allow-cpu" >&2
    exit 1
fi
device=$(python -c 'import jax; print(jax.devices()[0].device_kind)')
mkdir -p "$out"
csv=$(echo "$meshes" | tr ' ' ',')
legs=(--meshes "" --sample-meshes "" --memory-meshes "$csv" --no-memory-512-1024)

echo "device: $device ($backend), $(uptime)"
timeout "$timeout_s" python benchmarks/fieldlevel_scale.py "${legs[@]}" --peak \
    --memory-timeout "$timeout_s" 2>&1 | tee "$out/peak.log"
timeout "$timeout_s" python benchmarks/fieldlevel_scale.py "${legs[@]}" \
    --memory-timeout "$timeout_s" 2>&1 | tee "$out/compiled.log"
timeout "$timeout_s" python benchmarks/pm_vs_jaxpm.py --mesh "$pm_mesh" \
    --box "$((4 * pm_mesh))" 2>&1 | tee "$out/pm_vs_jaxpm.log"

echo
echo "=== lines for the note: $device, $(date -u +%Y-%m-%dT%H:%MZ), $(uptime | sed 's/.*load/load/') ==="
grep -h "^memory " "$out/peak.log" "$out/compiled.log" | sed "s/^/[$device] /"
grep -h "^cosmolaw: \|^jaxpm: \|^jaxpm-leapfrog: " "$out/pm_vs_jaxpm.log" | sed "s/^/[$device] pm_vs_jaxpm $pm_mesh^3: /"
for log in peak compiled pm_vs_jaxpm; do
    echo "[$device] $log: $(tail -n 1 "$out/$log.log")"
done
