#!/usr/bin/env bash
# One set-up step with a visible pulse: `scripts/step.sh "<what>" "<usual time>" <log file> <command...>`.
# Prints what it does, how long it usually takes on 2 cores and where its log is; runs the command with its output
# sent to the log; prints a heartbeat line (elapsed time + the log's last line) every HEARTBEAT_S seconds (default
# 60) while it runs; on failure prints the log's last 40 lines and exits with the command's status.
set -u
what=$1 usual=$2 log=$3
shift 3
mkdir -p "$(dirname "$log")"
echo "==> $what (usually $usual on 2 cores; log: $log)"
start=$(date +%s)
"$@" >"$log" 2>&1 &
pid=$!
beat=${HEARTBEAT_S:-60}
while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq "$beat"); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
        last=$(tail -c 2000 "$log" 2>/dev/null | tr '\r' '\n' | grep -v '^[[:space:]]*$' | tail -n 1 | cut -c1-100)
        echo "    ... still working: $what, $(( $(date +%s) - start )) s so far${last:+ (log: $last)}"
    fi
done
wait "$pid"
status=$?
if [ "$status" -ne 0 ]; then
    echo "!!  $what failed (exit $status) after $(( $(date +%s) - start )) s; last lines of $log:"
    tail -n 40 "$log"
    exit "$status"
fi
echo "    done: $what in $(( $(date +%s) - start )) s"
