#!/usr/bin/env bash
# A/B speed of two commits in one process (see README.md here):
#   bash benchmarks/ab/run.sh A_COMMIT B_COMMIT [PROCESSES] [ROUNDS] [WORKLOAD...]
# Builds each commit's library (Release, through its benchmarks project) in a temporary worktree, the probe against each, and the host; runs
# the host PROCESSES times (fresh processes) and prints the host's JSON lines.
set -euo pipefail
a=$1; b=$2; procs=${3:-3}; rounds=${4:-10}; shift $(( $# < 4 ? $# : 4 ))
workloads=${*:-es_raw es_tape es_compiled log_tape log_compiled hbnn_tape hbnn_compiled svi_simple svi_simple_c aevb_loss nuts_es}
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d /tmp/fb-ab.XXXXXX)
trap 'git -C "$root" worktree remove --force "$tmp/A" >/dev/null 2>&1 || true; git -C "$root" worktree remove --force "$tmp/B" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
for side in A B; do
  commit=$a; [ $side = B ] && commit=$b
  git -C "$root" worktree add -q --detach "$tmp/$side" "$commit"
  # the benchmarks project is an executable, so its bin holds the library with every package it needs
  ( cd "$tmp/$side" && dotnet build benchmarks/FunctionalBayes.Benchmarks -c Release -v q -nologo >/dev/null )
  lib="$tmp/$side/benchmarks/FunctionalBayes.Benchmarks/bin/Release/net10.0"
  old=false; grep -rq "RunContext" "$tmp/$side/src/FunctionalBayes" || old=true
  cp -r "$root/benchmarks/ab/probe" "$tmp/probe$side"
  dotnet build "$tmp/probe$side" -c Release -v q -nologo -p:FbDir="$lib" -p:OldApi=$old -o "$tmp/out$side" >/dev/null
  cp -n "$lib"/*.dll "$tmp/out$side/"
done
cp -r "$root/benchmarks/ab/host" "$tmp/host"
dotnet build "$tmp/host" -c Release -v q -nologo -o "$tmp/hostbin" >/dev/null
echo "{\"name\":\"ab_commits\",\"text\":\"A $(git -C "$root" rev-parse --short "$a"), B $(git -C "$root" rev-parse --short "$b"), $procs processes x $rounds rounds\"}"
for p in $(seq 1 "$procs"); do
  dotnet "$tmp/hostbin/host.dll" "$tmp/outA" "$tmp/outB" "$rounds" 0.25 $workloads
done
