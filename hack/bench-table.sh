#!/usr/bin/env bash
# Prints the custom metrics of a `go test -bench` log as a table.
set -euo pipefail
log=${1:?usage: bench-table.sh BENCH_LOG}
printf '%-28s %-26s %12s\n' BENCHMARK METRIC VALUE
awk '/^Benchmark/ {
  name=$1; sub(/-[0-9]+$/, "", name)
  for (i = 3; i + 1 <= NF; i += 2) {
    if ($(i+1) == "ns/op") continue
    printf "%-28s %-26s %12s\n", name, $(i+1), $i
  }
}' "$log"
