#!/bin/bash
# `sedic-kit run` on a folder with stderr through a pipe (timestamped lines: the plain progress),
# Ctrl-C (SIGINT) after AFTER seconds, then the same command again (it resumes).
# Usage: benchmarks/interrupt_resume.sh DATA OUT AFTER [sedic-kit run options...]
set -m  # a background job keeps Ctrl-C's default handling (non-interactive bash ignores SIGINT in it otherwise)
sigint_default=(python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])')
data=$1 out=$2 after=$3
shift 3
stamp() { local start=$1; while IFS= read -r line; do printf '%6.1f s  %s\n' "$(echo "$(date +%s.%N) - $start" | bc)" "$line"; done; }
cmd=(sedic-kit run "$data" --out "$out" "$@")
echo "\$ ${cmd[*]}   # interrupted after $after s; $(uptime)"
start=$(date +%s.%N)
"${sigint_default[@]}" "${cmd[@]}" 2> >(stamp "$start" >&2) | stamp "$start" &  # even where SIGINT was ignored on entry
sleep "$after"
kill -INT "$(jobs -p %1)"  # the job's first process: sedic-kit
wait
echo "\$ ${cmd[*]}   # again; $(uptime)"
start=$(date +%s.%N)
"${cmd[@]}" 2> >(stamp "$start" >&2) | stamp "$start"
echo "rc ${PIPESTATUS[0]}; $(uptime)"
