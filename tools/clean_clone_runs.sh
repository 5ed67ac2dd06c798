#!/usr/bin/env bash
# Run `make test` N times, each on a fresh clone of this repository's HEAD, while a busy loop
# keeps one core occupied (the condition under which clean clones used to fail). Prints one
# line per run and a summary; exits non-zero if any run failed. Each run's full log is kept
# in $LOGS (default /tmp/clean-clone-logs) so a failure can be read afterwards.
#   tools/clean_clone_runs.sh [RUNS]
set -u
runs=${1:-5}
repo=$(cd "$(dirname "$0")/.." && pwd)
head=$(git -C "$repo" rev-parse --short HEAD)
work=$(mktemp -d)
logs=${LOGS:-/tmp/clean-clone-logs}
mkdir -p "$logs"
python3 -c 'while True: pass' &
busy=$!
trap 'kill $busy 2>/dev/null; rm -rf "$work"' EXIT
passed=0
for i in $(seq 1 "$runs"); do
  clone="$work/run$i/main"
  mkdir -p "$work/run$i"
  git clone -q "$repo" "$clone"
  [ -d "$repo/../shared" ] && ln -s "$repo/../shared" "$work/run$i/shared"
  start=$(date +%s)
  log="$logs/$head-run$i.log"
  if (cd "$clone" && make test >"$log" 2>&1); then
    result=pass; passed=$((passed + 1))
  else
    result=FAIL
  fi
  summary=$(grep -E "^[0-9]+ (passed|failed)|passed|failed" "$log" | tail -1)
  echo "run $i ($head): $result in $(( $(date +%s) - start )) s: $summary"
  [ "$result" = FAIL ] && grep -E "^FAILED|^ERROR" "$log" | head -20
  rm -rf "$clone/.venv"
done
echo "$passed of $runs clean-clone runs passed with one core busy"
[ "$passed" = "$runs" ]
