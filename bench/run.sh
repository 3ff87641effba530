#!/usr/bin/env bash
# bench/run.sh: Plume against Centrifuge on this machine, one load tool
# (`plume bench`), the same parameters, each server in its own fresh process,
# runs alternating between the two. Prints a table of results and ratios.
#
#   bench/run.sh                    # quick matrix, a few minutes (make bench)
#   BENCH_SIZE=full bench/run.sh    # the matrix docs/benchmarks.md reports
#
# Environment: BENCH_SIZE (quick|full), BENCH_RUNS (runs per comparison,
# default 2; each run does both servers, the order alternating), BENCH_OUT
# (directory for binaries and JSON reports; default a new /tmp directory),
# BENCH_PORT (first of two loopback ports, default 4710), BENCH_ONLY (run only
# the scenarios whose names contain this).
#
# Only loopback traffic; every bench is bounded by its own limits and by
# `timeout`.
set -euo pipefail

SIZE=${BENCH_SIZE:-quick}
RUNS=${BENCH_RUNS:-2}
PORT=${BENCH_PORT:-4710}
ONLY=${BENCH_ONLY:-}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${BENCH_OUT:-$(mktemp -d /tmp/plume-bench.XXXXXX)}
mkdir -p "$OUT"

command -v jq >/dev/null || { echo "bench/run.sh needs jq" >&2; exit 2; }
case $SIZE in quick | full) ;; *) echo "BENCH_SIZE must be quick or full" >&2; exit 2 ;; esac

PLUME_PORT=$PORT
CF_PORT=$((PORT + 1))
PLUME_URL=ws://127.0.0.1:$PLUME_PORT/socket
CF_URL=ws://127.0.0.1:$CF_PORT/connection/websocket

echo "== building into $OUT"
(cd "$ROOT" && go build -o "$OUT/plume" ./cmd/plume)
(cd "$ROOT/bench/centrifuge" && go build -o "$OUT/centrifuge-bench-server" .)

# Scenarios: name | bench flags | plume bench-server flags | centrifuge server flags.
# Server flags "-" mean none.
scenarios=(
	"fanout-1k|-conns 1000 -messages 1000 -rate 0|-|-"
	"fanout-10k|-conns 10000 -messages 100 -rate 0|-|-"
)
# Memory: Centrifuge gets its smallest idle configuration,
# ProcessCommandsOffReadLoop (see bench/centrifuge).
if [ "$SIZE" = quick ]; then
	scenarios+=(
		"latency-5k|-conns 5000 -rate 200 -messages 1000 -duration 10s|-|-"
		"memory-10k|-conns 10000 -messages 1 -rate 1 -hold 10s|-|-off-read-loop"
		"presence-1k|-mode presence -conns 1000 -duration 2m -quiet 5s|-|-"
	)
else
	scenarios+=(
		# 200 messages/s to 5,000 subscribers is a million deliveries a
		# second: more than either server delivers on this machine, so this
		# measures who keeps up; the light run measures fan-out latency
		# below saturation.
		"latency-5k|-conns 5000 -rate 200 -messages 2000 -duration 15s|-|-"
		"latency-5k-light|-conns 5000 -rate 10 -messages 100 -duration 15s|-|-"
		# One server process holds at most ~19,500 sockets here (20,000
		# open files, the hard limit): 18,999 receivers and 1 publisher.
		"memory-19k|-conns 18999 -messages 1 -rate 1 -hold 60s|-|-off-read-loop"
		"presence-2k|-mode presence -conns 2000 -duration 5m -quiet 10s|-|-"
		# Each side's knob for join storms: Plume merges a topic's diffs
		# within 100 ms; Centrifuge batches join pushes per connection for
		# 100 ms. 10,000 clients in one bench process fall seconds behind
		# reading, so both servers get more patience than their defaults:
		# 30 s write timeouts, and Centrifuge pings every 60 s with a 30 s
		# pong timeout (its defaults: 25 s and 10 s).
		"presence-10k-batched|-mode presence -conns 10000 -duration 8m -quiet 10s|-presence-coalesce 100ms -write-timeout 30s|-presence-batch 100ms -ping-interval 60s -pong-timeout 30s -write-timeout 30s"
	)
fi

wait_port() {
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "server on port $1 did not start" >&2
	return 1
}

for p in $PLUME_PORT $CF_PORT; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "port $p is in use; set BENCH_PORT" >&2
		exit 2
	fi
done

SERVER_PID=
stop_server() {
	if [ -n "$SERVER_PID" ]; then
		kill "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
		SERVER_PID=
	fi
}
trap stop_server EXIT

# run_one NAME RUN KIND BENCHFLAGS SERVERFLAGS
run_one() {
	local name=$1 run=$2 kind=$3 flags=$4 sflags=$5 url proto port
	[ "$sflags" = - ] && sflags=
	if [ "$kind" = plume ]; then
		port=$PLUME_PORT url=$PLUME_URL proto=phoenix
		# shellcheck disable=SC2086
		"$OUT/plume" bench-server -addr 127.0.0.1:$port $sflags >"$OUT/$name.$kind.$run.server.log" 2>&1 &
	else
		port=$CF_PORT url=$CF_URL proto=centrifuge
		# shellcheck disable=SC2086
		"$OUT/centrifuge-bench-server" -addr 127.0.0.1:$port $sflags >"$OUT/$name.$kind.$run.server.log" 2>&1 &
	fi
	SERVER_PID=$!
	wait_port "$port"
	local json=$OUT/$name.$kind.$run.json rc=0
	# shellcheck disable=SC2086
	timeout 900 "$OUT/plume" bench -json -protocol $proto -url "$url" -pid "$SERVER_PID" $flags >"$json" 2>"$OUT/$name.$kind.$run.err" || rc=$?
	stop_server
	printf '   %-22s run %d %-10s exit %d\n' "$name" "$run" "$kind" "$rc"
	[ -s "$json" ] || echo '{}' >"$json"
}

{
	echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(go version | cut -d' ' -f3-)"
	echo "started: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg), size $SIZE, $RUNS run(s)"
} | tee "$OUT/machine.txt"

for sc in "${scenarios[@]}"; do
	IFS='|' read -r name flags pflags cflags <<<"$sc"
	if [ -n "$ONLY" ] && [[ $name != *"$ONLY"* ]]; then continue; fi
	echo "== $name: plume bench $flags"
	for run in $(seq "$RUNS"); do
		if [ $((run % 2)) = 1 ]; then
			run_one "$name" "$run" plume "$flags" "$pflags"
			run_one "$name" "$run" centrifuge "$flags" "$cflags"
		else
			run_one "$name" "$run" centrifuge "$flags" "$cflags"
			run_one "$name" "$run" plume "$flags" "$pflags"
		fi
	done
done
echo "finished: $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt"

# The table. "Plume ×" is how many times better Plume is: higher
# deliveries/s, or lower CPU, latency, memory, time.
row() { # name run metric jq-expression better(higher|lower) unit
	local p c
	p=$(jq -r "$4 // empty" "$OUT/$1.plume.$2.json" 2>/dev/null || true)
	c=$(jq -r "$4 // empty" "$OUT/$1.centrifuge.$2.json" 2>/dev/null || true)
	awk -v n="$1" -v r="$2" -v m="$3" -v p="$p" -v c="$c" -v b="$5" -v u="$6" 'BEGIN {
		ratio = "-"
		if (p != "" && c != "" && p + 0 > 0 && c + 0 > 0) ratio = sprintf("%.2f", b == "higher" ? p / c : c / p)
		f = (u == "/s" || u == "users") ? "%.0f" : "%.2f"
		ps = (p == "") ? "-" : sprintf(f, p); cs = (c == "") ? "-" : sprintf(f, c)
		printf "| %s | %s | %s | %s | %s | %s |\n", n, r, m " (" u ")", ps, cs, ratio
	}'
}
errors() { # name run: missed/disconnects/join errors of both, if any
	local k out=""
	for k in plume centrifuge; do
		local e
		e=$(jq -r '[(.messages.missed // 0), (.messages.disconnects // 0), (.connect.dial_errors // 0) + (.connect.join_errors // 0)] | if add > 0 then "missed \(.[0]), disconnects \(.[1]), connect errors \(.[2])" else empty end' "$OUT/$1.$k.$2.json" 2>/dev/null || true)
		[ -n "$e" ] && out="$out $k: $e;"
	done
	[ -n "$out" ] && echo "| $1 | $2 | errors |$out | | |"
	return 0
}

{
	echo
	echo "| scenario | run | metric | Plume | Centrifuge | Plume × |"
	echo "|---|---|---|---|---|---|"
	for sc in "${scenarios[@]}"; do
		IFS='|' read -r name _ <<<"$sc"
		if [ -n "$ONLY" ] && [[ $name != *"$ONLY"* ]]; then continue; fi
		for run in $(seq "$RUNS"); do
			case $name in
			fanout-*)
				row "$name" "$run" deliveries '.messages.deliveries_per_sec' higher /s
				row "$name" "$run" "server CPU" '.server.cpu_seconds_per_million_deliveries' lower "s/M deliveries"
				row "$name" "$run" "p99 latency" '.latency_ms.p99' lower ms
				;;
			latency-*)
				row "$name" "$run" "p50 latency" '.latency_ms.p50' lower ms
				row "$name" "$run" "p99 latency" '.latency_ms.p99' lower ms
				row "$name" "$run" "server CPU" '.server.cpu_seconds_per_million_deliveries' lower "s/M deliveries"
				;;
			memory-*)
				row "$name" "$run" "RSS per joined conn, held" '.server.rss_per_conn_held_kb' lower KB
				row "$name" "$run" "RSS per joined conn, at join" '.server.rss_per_conn_kb' lower KB
				row "$name" "$run" "connect rate" '.connect.joined_per_sec' higher /s
				;;
			presence-*)
				row "$name" "$run" "complete lists" '.presence.complete' higher users
				row "$name" "$run" "all lists complete" '.presence.all_complete_seconds' lower s
				row "$name" "$run" "join→complete p50" '.presence.complete_ms.p50' lower ms
				row "$name" "$run" "server CPU" '.server.cpu_seconds' lower s
				;;
			esac
			errors "$name" "$run"
		done
	done
	echo
	echo "JSON reports and server logs: $OUT"
} | tee "$OUT/summary.md"
