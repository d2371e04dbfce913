#!/usr/bin/env bash
# bench/run.sh: pgsslgate side by side with PostgreSQL's own TLS, plaintext
# direct, PgBouncer and stunnel, all in front of one throwaway PostgreSQL 15,
# in one run.  Run it as root on Debian 12; bench/README.md explains what it
# measures and how.
#
#   bench/run.sh                       the full run (about 12 minutes)
#   BENCH_SECONDS=2 BENCH_REPEATS=1 BENCH_COPY_MB=16 BENCH_IDLE=50 bench/run.sh
#                                      a quick try (under a minute)
#
# Settings (environment):
#   BENCH_REPEATS    repeats of every measurement; medians are reported (3)
#   BENCH_SECONDS    seconds per pgbench run (10)
#   BENCH_CLIENTS    pgbench clients, -c (16);  BENCH_JOBS  pgbench -j (2)
#   BENCH_SCALE      pgbench -i scale (10)
#   BENCH_COPY_MB    MiB moved by each COPY out and COPY in (1024)
#   BENCH_IDLE       idle TLS sessions held per proxy (1000)
#   BENCH_IDLE_BACKEND  pg: the held sessions reach PostgreSQL itself (one
#                    backend each); pooler: they reach a plaintext PgBouncer
#                    in transaction mode in front of it, so that PostgreSQL
#                    needs a handful of backends; auto (default): pg up to
#                    2000 sessions, pooler above
#   BENCH_BACKEND    how every proxy reaches PostgreSQL: unix (its Unix-domain
#                    socket, as a proxy on the database host would) or tcp
#                    (127.0.0.1) (unix)
#   BENCH_IDLE_ROUNDS  hold the idle sessions this many times in the same
#                    proxy process (1); more tells reuse from leaks
#   BENCH_TARGETS    subset and base order of: direct pgtls pgsslgate
#                    pgbouncer stunnel (all)
#   BENCH_WORKLOADS  subset of: speed select connect-rsa copy-out copy-in
#                    idle connect-ecdsa (all, run in that order)
#   BENCH_RESULTS    where results go (bench/results)
#   BENCH_MAKE=1     run make even when src/pgsslgate exists
#   BENCH_NO_INSTALL=1  never call apt-get; fail if something is missing
#   KEEP_TMP=1       keep the scratch directory
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(dirname "$BENCH")

REPEATS=${BENCH_REPEATS:-3}
DURATION=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-16}
JOBS=${BENCH_JOBS:-2}
SCALE=${BENCH_SCALE:-10}
COPY_MB=${BENCH_COPY_MB:-1024}
IDLE=${BENCH_IDLE:-1000}
IDLE_BACKEND=${BENCH_IDLE_BACKEND:-auto}
IDLE_ROUNDS=${BENCH_IDLE_ROUNDS:-1}
BACKEND=${BENCH_BACKEND:-unix}
TARGETS_LIST=${BENCH_TARGETS:-direct pgtls pgsslgate pgbouncer stunnel}
WORKLOADS_LIST=${BENCH_WORKLOADS:-speed select connect-rsa copy-out copy-in idle connect-ecdsa}
RESULTS=${BENCH_RESULTS:-$BENCH/results}

PG_BINDIR=/usr/lib/postgresql/15/bin
PGBENCH=$PG_BINDIR/pgbench
PSQL=$PG_BINDIR/psql
GATE_BUILT=$TOP/src/pgsslgate
GATE=			# the copy that runs (see main)
PGBOUNCER=/usr/sbin/pgbouncer
STUNNEL=/usr/bin/stunnel4

ALL_TARGETS=(direct pgtls pgsslgate pgbouncer stunnel)
ALL_WORKLOADS=(speed select connect-rsa copy-out copy-in idle connect-ecdsa)
PROXIES=(pgsslgate pgbouncer stunnel)

die() {
	echo "run.sh: $*" >&2
	exit 1
}

for v in REPEATS DURATION CLIENTS JOBS SCALE COPY_MB IDLE IDLE_ROUNDS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_$v must be a positive integer (got '${!v}')"
done
[ "$JOBS" -le "$CLIENTS" ] || die "BENCH_JOBS must not exceed BENCH_CLIENTS"
read -r -a TARGETS <<<"$TARGETS_LIST"
read -r -a WORKLOADS <<<"$WORKLOADS_LIST"
for t in "${TARGETS[@]}"; do
	[[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || die "unknown target '$t' (known: ${ALL_TARGETS[*]})"
done
for w in "${WORKLOADS[@]}"; do
	[[ " ${ALL_WORKLOADS[*]} " == *" $w "* ]] || die "unknown workload '$w' (known: ${ALL_WORKLOADS[*]})"
done
case $IDLE_BACKEND in
auto) if [ "$IDLE" -le 2000 ]; then IDLE_BACKEND=pg; else IDLE_BACKEND=pooler; fi ;;
pg | pooler) ;;
*) die "BENCH_IDLE_BACKEND must be pg, pooler or auto" ;;
esac
case $BACKEND in
unix | tcp) ;;
*) die "BENCH_BACKEND must be unix or tcp" ;;
esac

has_target() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
has_workload() { [[ " ${WORKLOADS[*]} " == *" $1 "* ]]; }

# libpq must see only what this script gives it.
for v in $(compgen -e); do
	case $v in PG_*) ;; PG*) unset "$v" ;; esac
done

# ---- messages -------------------------------------------------------------

T_START=$EPOCHREALTIME
say() {
	printf '[%6.1fs] %s\n' "$(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')" "$*" >&2
}

# ---- installing and building ----------------------------------------------

PACKAGES=(
	pgbouncer stunnel4 postgresql-15 postgresql-client-15 postgresql-contrib
	libpq-dev openssl build-essential autoconf automake pkg-config
	libevent-dev libssl-dev util-linux procps iproute2
)

install_missing() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
			grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "${BENCH_NO_INSTALL:-0}" = 1 ] || [ "$(id -u)" -ne 0 ]; then
		die "missing Debian packages: ${missing[*]} (run as root to install them)"
	fi
	say "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts its own services on install; this run brings its own.
	pg_ctlcluster 15 main stop >/dev/null 2>&1 || true
	if [[ " ${missing[*]} " == *" pgbouncer "* ]]; then
		service pgbouncer stop >/dev/null 2>&1 || true
	fi
}

build_gate() {
	if [ -x "$GATE_BUILT" ] && [ "${BENCH_MAKE:-0}" != 1 ]; then
		return 0
	fi
	say "building pgsslgate"
	(
		cd "$TOP"
		[ -x configure ] || ./autogen.sh
		[ -f Makefile ] || ./configure
		make -C "$TOP" -j"$(nproc)" src/pgsslgate
	) >&2 || die "building pgsslgate failed"
	[ -x "$GATE_BUILT" ] || die "$GATE_BUILT was not built"
}

# ---- processes and cleanup -----------------------------------------------------

WORK=
GATE_INFO=
LOAD_START=
PG_DATA=
PG_STARTED=0
CHILD=			# the benchmark command running now (a process group)
HOLDER=			# idle_hold, while it runs
HOLDER_FD=
declare -A PROXY_PID=()	# target (or "helper") -> pid
declare -A PROXY_LOG=()

# Every background job runs under setsid, in a process group of its own
# (setsid execs, so $! is the program itself): a whole pipeline can be
# stopped at once.  Ctrl-C reaches this script (background jobs ignore it),
# whose trap then stops everything.  (Not set -m: with it, Ctrl-C would go to
# whatever foreground command runs at that moment, and the script would go on.)

stop_group() {		# stop_group PID: TERM its process group, then KILL
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cleanup() {
	local rc=$? name
	trap - EXIT INT TERM HUP
	set +e
	[ -n "$CHILD" ] && stop_group "$CHILD"
	if [ -n "$HOLDER_FD" ]; then
		eval "exec $HOLDER_FD>&-"
	fi
	[ -n "$HOLDER" ] && stop_group "$HOLDER"
	for name in "${!PROXY_PID[@]}"; do
		stop_group "${PROXY_PID[$name]}"
	done
	if [ "$PG_STARTED" = 1 ]; then
		as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>&1
	fi
	if [ -n "$WORK" ] && [ -d "$WORK" ]; then
		save_logs
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			say "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	[ $rc -eq 0 ] || say "stopped (status $rc); everything it started is stopped"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# The last lines of every log, for after the scratch directory is gone.
save_logs() {
	local f dest=$RESULTS/logs
	[ -d "$WORK/logs" ] || return 0
	mkdir -p "$dest"
	rm -f "$dest"/*.log
	for f in "$WORK"/logs/*.log "$WORK/pg/postgres.log"; do
		[ -f "$f" ] || continue
		tail -n 500 "$f" >"$dest/$(basename "$f")"
	done
}

# run_cmd OUT CMD...: run CMD as a process group, output to OUT; returns its
# status.  Interruptible: a signal to this script stops it.
run_cmd() {
	local out=$1 rc=0
	shift
	setsid "$@" >"$out" 2>&1 </dev/null &
	CHILD=$!
	wait "$CHILD" || rc=$?
	CHILD=
	return $rc
}

# ---- measuring processes --------------------------------------------------------

HZ=$(getconf CLK_TCK)

# tree_ticks PID: CPU clock ticks (utime + stime) of PID with all its
# threads, plus those of its descendants: the ones it has reaped (cutime,
# cstime) and those alive now.  For a single process (threads or not) that
# is just its own utime + stime.
tree_ticks() {
	local line f total child
	read -r line 2>/dev/null <"/proc/$1/stat" || { echo 0; return; }
	read -r -a f <<<"${line##*) }"
	total=$((f[11] + f[12] + f[13] + f[14]))
	for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		total=$((total + $(tree_ticks "$child")))
	done
	echo "$total"
}

# All of PostgreSQL: the postmaster and its backends, live or gone.
pg_ticks() {
	tree_ticks "$(head -n 1 "$PG_DATA/postmaster.pid")"
}

# pg_quiesce: wait (up to 3 s) until PostgreSQL's set of processes stops
# changing, so that the backends of the run just ended have exited and been
# reaped (their CPU then sits in the postmaster's cutime + cstime).  Reading
# while they exit would lose those reaped between the two reads.
pg_quiesce() {
	local pm before after
	pm=$(head -n 1 "$PG_DATA/postmaster.pid")
	after=$(cat /proc/"$pm"/task/*/children 2>/dev/null)
	for _ in $(seq 1 15); do
		before=$after
		sleep 0.2
		after=$(cat /proc/"$pm"/task/*/children 2>/dev/null)
		[ "$before" != "$after" ] || return 0
	done
}

# tree_rss PID: VmRSS of PID plus that of any child process, KiB.  (Threads
# share their process's VmRSS.)
tree_rss() {
	local total child
	total=$(awk '/^VmRSS:/ { print $2; exit }' "/proc/$1/status" 2>/dev/null)
	total=${total:-0}
	for child in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		total=$((total + $(tree_rss "$child")))
	done
	echo "$total"
}

# CPU ticks of TARGET's proxy process, or "NA" for the direct targets.
target_ticks() {
	local pid=${PROXY_PID[$1]:-}
	if [ -n "$pid" ]; then tree_ticks "$pid"; else echo NA; fi
}

# ticks_us DELTA_TICKS PER: microseconds of CPU per unit
ticks_us() {
	awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN {
		if (t == "NA" || n <= 0) print "NA"; else printf "%.1f", t * 1e6 / hz / n }'
}

delta() {
	if [ "$1" = NA ] || [ "$2" = NA ]; then echo NA; else echo $(($2 - $1)); fi
}

# ---- results ---------------------------------------------------------------------

RAW=
CMDS=
# rec WORKLOAD TARGET METRIC REPEAT VALUE
rec() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"
}

# logcmd CMD...: note a command line, once, in the commands list
logcmd() {
	local line
	line=$(printf '%q ' "$@")
	line=${line% }
	grep -qxF -- "$line" "$CMDS" 2>/dev/null || echo "$line" >>"$CMDS"
}

# ---- ports ----------------------------------------------------------------------

declare -A USED_PORT=()
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 10000))
		[ -z "${USED_PORT[$p]:-}" ] || continue
		if [ -z "$(ss -Htan "( sport = :$p )" 2>/dev/null)" ]; then
			USED_PORT[$p]=1
			echo "$p"
			return 0
		fi
	done
	die "no free port found"
}

wait_listen() {		# wait_listen NAME PORT PID
	local name=$1 port=$2 pid=$3
	for _ in $(seq 1 200); do
		if [ -n "$(ss -Hltn "( sport = :$port )" 2>/dev/null)" ]; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "--- $name log:" >&2
	tail -n 30 "${PROXY_LOG[$name]}" >&2 || true
	die "$name did not start listening on port $port"
}

# ---- PostgreSQL -------------------------------------------------------------------

PG_PORT=
PG_MAX_CONN=

pg_start() {
	local dir=$WORK/pg
	PG_DATA=$dir/data
	PG_PORT=$(free_port)
	if [ "$IDLE_BACKEND" = pg ] && has_workload idle; then
		PG_MAX_CONN=$((IDLE + 100))
	else
		PG_MAX_CONN=200
	fi
	[ "$PG_MAX_CONN" -ge $((CLIENTS + 50)) ] || PG_MAX_CONN=$((CLIENTS + 50))
	mkdir -p "$dir"
	[ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
	logcmd "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --locale=C --no-sync
	as_pg "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 \
		--locale=C --no-sync >"$WORK/logs/initdb.log" 2>&1 ||
		{ tail -n 20 "$WORK/logs/initdb.log" >&2; die "initdb failed"; }
	cat >>"$PG_DATA/postgresql.conf" <<-EOF
		# added by bench/run.sh
		listen_addresses = '127.0.0.1'
		port = $PG_PORT
		unix_socket_directories = '$dir'
		max_connections = $PG_MAX_CONN
		ssl = on
		ssl_cert_file = '$PGCERTS/server-chain.crt'
		ssl_key_file = '$PGCERTS/server.key'
		shared_buffers = 256MB
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_wal_size = 4GB
		log_min_messages = warning
	EOF
	cat >"$PG_DATA/pg_hba.conf" <<-EOF
		local all all trust
		host all all 127.0.0.1/32 trust
	EOF
	logcmd "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/postgres.log" -w start
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$WORK/pg/postgres.log" \
		-w -t 60 start >"$WORK/logs/pg_ctl.log" 2>&1 ||
		{ tail -n 20 "$WORK/pg/postgres.log" >&2; die "PostgreSQL did not start"; }
	PG_STARTED=1
}

# psql as the superuser, plaintext, straight to PostgreSQL (setup only).
pg_sql() {
	PGSSLMODE=disable "$PSQL" -X -q -At -v ON_ERROR_STOP=1 -h 127.0.0.1 \
		-p "$PG_PORT" -U postgres -d postgres "$@"
}

pg_use_cert() {		# pg_use_cert rsa|ec: PostgreSQL's own certificate
	local chain key
	read -r chain key < <(cert_files "$1" "$PGCERTS")
	pg_sql -c "ALTER SYSTEM SET ssl_cert_file = '$chain'" \
		-c "ALTER SYSTEM SET ssl_key_file = '$key'" \
		-c "SELECT pg_reload_conf()" >/dev/null
	sleep 1
}

# ---- certificates -----------------------------------------------------------------

CERTS=
PGCERTS=

make_certs() {
	CERTS=$WORK/certs
	logcmd bash "$TOP/tests/certs.sh" "$CERTS"
	bash "$TOP/tests/certs.sh" "$CERTS" || die "tests/certs.sh failed"
	# PostgreSQL and PgBouncer run as postgres: they get their own copies.
	PGCERTS=$WORK/pgcerts
	mkdir -p "$PGCERTS"
	cp "$CERTS"/server-chain.crt "$CERTS"/server.key \
		"$CERTS"/server-ec-chain.crt "$CERTS"/server-ec.key "$PGCERTS/"
	chmod 0600 "$PGCERTS"/*.key
	chmod 0644 "$PGCERTS"/*.crt
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$PGCERTS"
	fi
}

cert_files() {		# cert_files rsa|ec DIR: prints "CHAIN KEY"
	case $1 in
	rsa) echo "$2/server-chain.crt $2/server.key" ;;
	ec) echo "$2/server-ec-chain.crt $2/server-ec.key" ;;
	esac
}

# ---- the proxies --------------------------------------------------------------------

declare -A PORT=()
declare -A SSLMODE=([direct]=disable [pgtls]=require [pgsslgate]=require
	[pgbouncer]=require [stunnel]=require)
HELPER_PORT=

# pgbouncer_cmd DIR: set cmd to run PgBouncer on DIR/pgbouncer.ini; as root,
# as postgres (PgBouncer refuses root), which then owns DIR.
pgbouncer_cmd() {
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$1"
		cmd=(setpriv --reuid=postgres --regid=postgres --init-groups
			"$PGBOUNCER" "$1/pgbouncer.ini")
	else
		cmd=("$PGBOUNCER" "$1/pgbouncer.ini")
	fi
}

# start_proxy TARGET rsa|ec BACKEND_PORT
start_proxy() {
	local t=$1 kind=$2 backend=$3 chain key log=$WORK/logs/$1.log dir
	local host=127.0.0.1 stunnel_to=127.0.0.1:$3
	local -a cmd
	# PostgreSQL itself over its socket; the idle helper is TCP-only.
	if [ "$BACKEND" = unix ] && [ "$backend" = "$PG_PORT" ]; then
		host=$WORK/pg
		stunnel_to=$WORK/pg/.s.PGSQL.$backend
	fi
	case $t in
	pgsslgate)
		read -r chain key < <(cert_files "$kind" "$CERTS")
		cmd=("$GATE" -c listen_addresses=127.0.0.1 -c "port=${PORT[$t]}"
			-c "backend_host=$host" -c "backend_port=$backend"
			-c ssl=on -c require_ssl=on -c "ssl_cert_file=$chain"
			-c "ssl_key_file=$key" -c max_connections=20000)
		;;
	pgbouncer)
		read -r chain key < <(cert_files "$kind" "$PGCERTS")
		dir=$WORK/pgbouncer
		mkdir -p "$dir"
		echo '"postgres" ""' >"$dir/userlist.txt"
		cat >"$dir/pgbouncer.ini" <<-EOF
			[databases]
			* = host=$host port=$backend

			[pgbouncer]
			listen_addr = 127.0.0.1
			listen_port = ${PORT[$t]}
			unix_socket_dir =
			auth_type = trust
			auth_file = $dir/userlist.txt
			pool_mode = session
			max_client_conn = 20000
			default_pool_size = $((IDLE + CLIENTS + 50))
			client_tls_sslmode = require
			client_tls_cert_file = $chain
			client_tls_key_file = $key
			ignore_startup_parameters = extra_float_digits
			log_connections = 0
			log_disconnections = 0
			logfile =
			pidfile =
		EOF
		pgbouncer_cmd "$dir"
		;;
	stunnel)
		read -r chain key < <(cert_files "$kind" "$CERTS")
		dir=$WORK/stunnel
		mkdir -p "$dir"
		cat >"$dir/stunnel.conf" <<-EOF
			foreground = yes
			pid =
			debug = warning

			[pg]
			client = no
			accept = 127.0.0.1:${PORT[$t]}
			connect = $stunnel_to
			protocol = pgsql
			cert = $chain
			key = $key
		EOF
		cmd=("$STUNNEL" "$dir/stunnel.conf")
		;;
	helper)	# plaintext transaction pooler for the idle sessions
		dir=$WORK/helper
		mkdir -p "$dir"
		echo '"postgres" ""' >"$dir/userlist.txt"
		cat >"$dir/pgbouncer.ini" <<-EOF
			[databases]
			* = host=127.0.0.1 port=$PG_PORT

			[pgbouncer]
			listen_addr = 127.0.0.1
			listen_port = $HELPER_PORT
			unix_socket_dir =
			auth_type = trust
			auth_file = $dir/userlist.txt
			pool_mode = transaction
			max_client_conn = 20000
			default_pool_size = 20
			ignore_startup_parameters = extra_float_digits
			log_connections = 0
			log_disconnections = 0
			logfile =
			pidfile =
		EOF
		pgbouncer_cmd "$dir"
		;;
	esac
	logcmd "${cmd[@]}"
	PROXY_LOG[$t]=$log
	echo "=== start: ${cmd[*]}" >>"$log"
	setsid "${cmd[@]}" >>"$log" 2>&1 </dev/null &
	PROXY_PID[$t]=$!
	if [ "$t" = helper ]; then
		wait_listen "$t" "$HELPER_PORT" "${PROXY_PID[$t]}"
	else
		wait_listen "$t" "${PORT[$t]}" "${PROXY_PID[$t]}"
	fi
}

stop_proxy() {
	local t=$1
	[ -n "${PROXY_PID[$t]:-}" ] || return 0
	stop_group "${PROXY_PID[$t]}"
	unset "PROXY_PID[$t]"
	echo "=== stopped" >>"${PROXY_LOG[$t]}"
}

# (Re)start every proxy among the targets, with rsa or ec certificates.
start_proxies() {
	local kind=$1 t
	for t in "${PROXIES[@]}"; do
		has_target "$t" || continue
		stop_proxy "$t"
		start_proxy "$t" "$kind" "$PG_PORT"
	done
}

# probe_target TARGET FILE: one connection to TARGET: that a query works,
# and what TLS it negotiates (saved in FILE).
probe_target() {
	local t=$1 out=$2
	if ! PGSSLMODE=${SSLMODE[$t]} PGCONNECT_TIMEOUT=10 "$PSQL" -X -At -h 127.0.0.1 \
		-p "${PORT[$t]}" -U postgres -d postgres \
		-c "SELECT 'query ok'" >"$out" 2>&1; then
		cat "$out" >&2
		die "a query through $t failed"
	fi
	if [ "${SSLMODE[$t]}" = require ]; then
		openssl s_client -starttls postgres -connect "127.0.0.1:${PORT[$t]}" \
			</dev/null 2>&1 | grep -E '^(New, |Server public key is|Peer signature type|Server Temp Key)' |
			tr '\n' ';' | sed 's/;$//' >"$out"
		[ -s "$out" ] || die "TLS handshake with $t (openssl s_client) failed"
	else
		echo "plaintext" >"$out"
	fi
	cat "$out"
}

# ---- helpers for the rotation --------------------------------------------------------

# The targets for repeat R (0-based), rotated by R, keeping only those for
# which "wants WORKLOAD TARGET" holds.
order_for() {
	local r=$1 w=$2 n=${#TARGETS[@]} i t
	for ((i = 0; i < n; i++)); do
		t=${TARGETS[$(((i + r) % n))]}
		wants "$w" "$t" && echo "$t"
	done
	return 0
}

wants() {
	case $1 in
	connect-ecdsa) [ "$2" != direct ] ;;	# nothing to do with certificates
	idle) [[ " ${PROXIES[*]} " == *" $2 "* ]] ;;
	*) true ;;
	esac
}

settle() { sleep 0.5; }

# ---- workloads ---------------------------------------------------------------------------

# pgbench_run WORKLOAD TARGET REPEAT [EXTRA-ARGS...]
pgbench_run() {
	local w=$1 t=$2 r=$3 out=$WORK/out/$1-$2-$3.txt rc=0
	shift 3
	local -a cmd=("$PGBENCH" -n -S "$@" -c "$CLIENTS" -j "$JOBS" -T "$DURATION"
		-h 127.0.0.1 -p "${PORT[$t]}" -U postgres postgres)
	local p0 p1 s0 s1 txns tps lat conn failed aborted unit
	logcmd env "PGSSLMODE=${SSLMODE[$t]}" "${cmd[@]}"
	pg_quiesce
	p0=$(target_ticks "$t")
	s0=$(pg_ticks)
	PGSSLMODE=${SSLMODE[$t]} run_cmd "$out" "${cmd[@]}" || rc=$?
	pg_quiesce
	p1=$(target_ticks "$t")
	s1=$(pg_ticks)
	txns=$(awk -F': *' '/^number of transactions actually processed/ { split($2, a, "/"); print a[1] + 0 }' "$out")
	tps=$(awk '/^tps = / { print $3; exit }' "$out")
	lat=$(awk '/^latency average = / { print $4; exit }' "$out")
	conn=$(awk '/^average connection time = / { print $5; exit }' "$out")
	failed=$(awk -F': *' '/^number of failed transactions/ { print $2 + 0 }' "$out")
	aborted=$(grep -c 'aborted' "$out" || true)
	: "${txns:=0}" "${failed:=0}"
	if [ "$txns" -le 0 ]; then
		say "  $t: pgbench did nothing (status $rc):"
		tail -n 5 "$out" | sed 's/^/    /' >&2
		rec "$w" "$t" errors "$r" "$((aborted + failed + 1))"
		return 0
	fi
	rec "$w" "$t" tps "$r" "$tps"
	rec "$w" "$t" latency_ms "$r" "${lat:-NA}"
	[ -z "$conn" ] || rec "$w" "$t" connect_ms "$r" "$conn"
	rec "$w" "$t" transactions "$r" "$txns"
	rec "$w" "$t" errors "$r" "$((aborted + failed))"
	if [ "$w" = select ]; then unit=txn; else unit=session; fi
	rec "$w" "$t" "proxy_us_per_$unit" "$r" "$(ticks_us "$(delta "$p0" "$p1")" "$txns")"
	rec "$w" "$t" "server_us_per_$unit" "$r" "$(ticks_us "$((s1 - s0))" "$txns")"
	if [ -n "${PROXY_PID[$t]:-}" ]; then
		rec "$w" "$t" proxy_rss_kib "$r" "$(tree_rss "${PROXY_PID[$t]}")"
	fi
	say "  $t: $tps tps, proxy $(ticks_us "$(delta "$p0" "$p1")" "$txns") µs/$unit, errors $((aborted + failed))"
	if [ "$((aborted + failed))" -gt 0 ]; then
		grep -m 3 -iE 'error|abort|fatal' "$out" | sed 's/^/    /' >&2 || true
	fi
}

COPY_ROWS=
COPY_BYTES=

copy_setup() {
	COPY_ROWS=$((COPY_MB * 1048576 / 1001))
	COPY_BYTES=$((COPY_ROWS * 1001))
	pg_sql -c "CREATE UNLOGGED TABLE IF NOT EXISTS bench_copy_in (t text)"
}

# copy_cmd copy-out|copy-in TARGET: sets CMD to a shell command line for one
# COPY through TARGET (run with bash -c, so that it can run under setsid),
# and notes it.
copy_cmd() {
	local psql="PGSSLMODE=${SSLMODE[$2]} $PSQL -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p ${PORT[$2]} -U postgres -d postgres"
	local psql_tag=${psql/ -q / }	# without -q: psql prints "COPY n"
	if [ "$1" = copy-out ]; then
		CMD="$psql -c \"COPY (SELECT repeat('x', 1000) FROM generate_series(1, $COPY_ROWS)) TO STDOUT\" >/dev/null"
	else
		CMD="yes \"\$(printf '%1000s' '' | tr ' ' x)\" | head -n $COPY_ROWS | $psql_tag -c \"COPY bench_copy_in FROM STDIN\""
	fi
	grep -qxF -- "$CMD" "$CMDS" || echo "$CMD" >>"$CMDS"
}

# copy_run copy-out|copy-in TARGET REPEAT
copy_run() {
	local w=$1 t=$2 r=$3 out=$WORK/out/$1-$2-$3.txt rc=0
	local CMD
	local p0 p1 s0 s1 t0 t1 secs gb
	if [ "$w" = copy-in ]; then
		pg_sql -c "TRUNCATE bench_copy_in"
	fi
	copy_cmd "$w" "$t"
	pg_quiesce
	p0=$(target_ticks "$t")
	s0=$(pg_ticks)
	t0=$EPOCHREALTIME
	run_cmd "$out" bash -c "$CMD" || rc=$?
	t1=$EPOCHREALTIME
	pg_quiesce
	p1=$(target_ticks "$t")
	s1=$(pg_ticks)
	if [ "$rc" -ne 0 ]; then
		say "  $t: $w failed (status $rc):"
		tail -n 5 "$out" | sed 's/^/    /' >&2
		rec "$w" "$t" errors "$r" 1
		return 0
	fi
	if [ "$w" = copy-in ]; then
		if ! grep -qx "COPY $COPY_ROWS" "$out"; then
			say "  $t: copy-in did not report COPY $COPY_ROWS: $(head -c 200 "$out")"
			rec "$w" "$t" errors "$r" 1
			return 0
		fi
	fi
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
	gb=$(awk -v b="$COPY_BYTES" 'BEGIN { print b / 1e9 }')
	rec "$w" "$t" seconds "$r" "$secs"
	rec "$w" "$t" mb_per_s "$r" "$(awk -v b="$COPY_BYTES" -v s="$secs" 'BEGIN { printf "%.1f", b / 1048576 / s }')"
	rec "$w" "$t" errors "$r" 0
	rec "$w" "$t" proxy_cpu_s_per_gb "$r" "$(awk -v d="$(delta "$p0" "$p1")" -v hz="$HZ" -v gb="$gb" \
		'BEGIN { if (d == "NA") print "NA"; else printf "%.3f", d / hz / gb }')"
	rec "$w" "$t" server_cpu_s_per_gb "$r" "$(awk -v d="$((s1 - s0))" -v hz="$HZ" -v gb="$gb" \
		'BEGIN { printf "%.3f", d / hz / gb }')"
	if [ -n "${PROXY_PID[$t]:-}" ]; then
		rec "$w" "$t" proxy_rss_kib "$r" "$(tree_rss "${PROXY_PID[$t]}")"
	fi
	say "  $t: ${secs}s, proxy $(awk -v d="$(delta "$p0" "$p1")" -v hz="$HZ" -v gb="$gb" \
		'BEGIN { if (d == "NA") print "NA"; else printf "%.3f", d / hz / gb }') CPU-s/GB"
}

# hold_once TARGET OUT: run idle_hold through TARGET until it has opened its
# sessions; sets HOLD_LINE (its "ready" line, or empty), HOLD_RSS (the
# proxy's RSS while they are held) and HOLD_RSS_CLOSED (after they closed).
HOLD_LINE=
HOLD_RSS=
HOLD_RSS_CLOSED=
hold_once() {
	local t=$1 out=$2 pid=${PROXY_PID[$1]} fifo=$WORK/holder.fifo tries
	local conninfo="host=127.0.0.1 port=${PORT[$t]} user=postgres dbname=postgres sslmode=require connect_timeout=60"
	rm -f "$fifo"
	mkfifo "$fifo"
	logcmd "$WORK/idle_hold" "$conninfo" "$IDLE"
	: >"$out"
	setsid "$WORK/idle_hold" "$conninfo" "$IDLE" <"$fifo" >"$out" 2>&1 &
	HOLDER=$!
	exec {HOLDER_FD}>"$fifo"
	tries=$((600 + IDLE / 5))	# tenths of a second
	while ! grep -q '^ready' "$out" && kill -0 "$HOLDER" 2>/dev/null && [ $tries -gt 0 ]; do
		sleep 0.1
		tries=$((tries - 1))
	done
	sleep 0.5
	HOLD_RSS=$(tree_rss "$pid")
	HOLD_LINE=$(grep -m 1 '^ready' "$out" || true)
	exec {HOLDER_FD}>&-
	HOLDER_FD=
	wait "$HOLDER" 2>/dev/null || true
	HOLDER=
	sleep 1
	HOLD_RSS_CLOSED=$(tree_rss "$pid")
}

# idle_run TARGET REPEAT: a fresh proxy, IDLE sessions held through it, the
# growth of its RSS.  With BENCH_IDLE_ROUNDS=N > 1 the same process holds
# them N times over, to tell memory kept for reuse from memory leaked.
idle_run() {
	local t=$1 r=$2 out=$WORK/out/idle-$1-$2.txt backend=$PG_PORT pid
	local rss0 rss1 rss2 line held failed ssl round
	[ "$IDLE_BACKEND" = pg ] || backend=$HELPER_PORT
	stop_proxy "$t"
	start_proxy "$t" rsa "$backend"
	pid=${PROXY_PID[$t]}
	sleep 0.5
	rss0=$(tree_rss "$pid")
	hold_once "$t" "$out"
	rss1=$HOLD_RSS
	rss2=$HOLD_RSS_CLOSED
	line=$HOLD_LINE
	for ((round = 2; round <= IDLE_ROUNDS; round++)); do
		hold_once "$t" "$out.$round"
		rec idle "$t" "rss_held_round${round}_kib" "$r" "$HOLD_RSS"
		rec idle "$t" "rss_after_close_round${round}_kib" "$r" "$HOLD_RSS_CLOSED"
		say "  $t: round $round: $(cut -d' ' -f2-3 <<<"$HOLD_LINE"), RSS held $HOLD_RSS KiB, after close $HOLD_RSS_CLOSED KiB"
	done
	# stop it: a pooler keeps its server connections, which would count
	# against PostgreSQL's max_connections in the next target's turn
	stop_proxy "$t"
	if [ -z "$line" ]; then
		say "  $t: idle_hold did not get ready:"
		tail -n 5 "$out" | sed 's/^/    /' >&2
		rec idle "$t" errors "$r" "$IDLE"
		return 0
	fi
	held=$(sed -n 's/.* held=\([0-9]*\).*/\1/p' <<<"$line")
	failed=$(sed -n 's/.* failed=\([0-9]*\).*/\1/p' <<<"$line")
	ssl=$(sed -n 's/.* ssl=\([0-9]*\).*/\1/p' <<<"$line")
	rec idle "$t" held "$r" "$held"
	rec idle "$t" errors "$r" "$failed"
	rec idle "$t" tls_sessions "$r" "$ssl"
	rec idle "$t" rss_before_kib "$r" "$rss0"
	rec idle "$t" rss_held_kib "$r" "$rss1"
	rec idle "$t" rss_after_close_kib "$r" "$rss2"
	if [ "$held" -gt 0 ]; then
		rec idle "$t" kib_per_session "$r" "$(awk -v a="$rss0" -v b="$rss1" -v n="$held" 'BEGIN { printf "%.2f", (b - a) / n }')"
	fi
	say "  $t: held $held (TLS $ssl, failed $failed), RSS $rss0 -> $rss1 -> $rss2 KiB after close"
	[ "$failed" -eq 0 ] || say "    first error: ${line#*first_error=}"
}

speed_run() {
	local out=$WORK/out/speed.txt rsa ec aes
	say "openssl speed (crypto floors)"
	logcmd openssl speed -mr -seconds 2 rsa2048 ecdsap256
	run_cmd "$out" openssl speed -mr -seconds 2 rsa2048 ecdsap256 || die "openssl speed failed"
	rsa=$(awk -F: '/^\+F2:/ { print $4, $5 }' "$out")
	ec=$(awk -F: '/^\+F4:/ { print $4, $5 }' "$out")
	logcmd openssl speed -mr -seconds 2 -evp aes-256-gcm
	run_cmd "$out.aes" openssl speed -mr -seconds 2 -evp aes-256-gcm || die "openssl speed failed"
	# +H:16:64:...:16384 then +F:N:AES-256-GCM:bytes/s for each size
	aes=$(awk -F: '/^\+H:/ { for (i = 2; i <= NF; i++) if ($i == 16384) col = i + 2 }
		/^\+F:/ && col { print $col }' "$out.aes")
	read -r rs rv <<<"$rsa"
	read -r es ev <<<"$ec"
	rec speed openssl rsa2048_sign_us 0 "$(awk -v x="$rs" 'BEGIN { printf "%.1f", 1e6 / x }')"
	rec speed openssl rsa2048_verify_us 0 "$(awk -v x="$rv" 'BEGIN { printf "%.1f", 1e6 / x }')"
	rec speed openssl ecdsap256_sign_us 0 "$(awk -v x="$es" 'BEGIN { printf "%.1f", 1e6 / x }')"
	rec speed openssl ecdsap256_verify_us 0 "$(awk -v x="$ev" 'BEGIN { printf "%.1f", 1e6 / x }')"
	rec speed openssl aes256gcm_16k_cpu_s_per_gb 0 "$(awk -v x="$aes" 'BEGIN { printf "%.3f", 1e9 / x }')"
}

# run_workload WORKLOAD: every repeat, targets rotated
run_workload() {
	local w=$1 r t
	for ((r = 0; r < REPEATS; r++)); do
		say "$w, repeat $((r + 1)) of $REPEATS"
		for t in $(order_for "$r" "$w"); do
			case $w in
			select) pgbench_run "$w" "$t" "$r" ;;
			connect-rsa | connect-ecdsa) pgbench_run "$w" "$t" "$r" -C ;;
			copy-out | copy-in) copy_run "$w" "$t" "$r" ;;
			idle) idle_run "$t" "$r" ;;
			esac
			settle
		done
	done
}

# ---- reporting ------------------------------------------------------------------------------

TAB=$'\t'
SUMMARY=

# medians of the raw results: workload target metric median n
summarize() {
	sort -t$'\t' -k1,1 -k2,2 -k3,3 -k5,5g "$RAW" | awk -F'\t' -v OFS='\t' '
		function flush() {
			if (n == 0) return
			if (n % 2) m = v[(n + 1) / 2]; else m = (v[n / 2] + v[n / 2 + 1]) / 2
			if (na) m = "NA"
			print k1, k2, k3, m, n
		}
		{ key = $1 SUBSEP $2 SUBSEP $3
		  if (key != last) { flush(); n = 0; na = 0; last = key; k1 = $1; k2 = $2; k3 = $3 }
		  if ($5 == "NA") na = 1
		  v[++n] = $5 }
		END { flush() }' >"$SUMMARY.tmp"
	# add the ratio to pgsslgate of each figure
	awk -F'\t' -v OFS='\t' '
		NR == FNR { if ($2 == "pgsslgate") g[$1 SUBSEP $3] = $4; next }
		FNR == 1 { print "workload", "target", "metric", "median", "repeats", "ratio_vs_pgsslgate" }
		{ k = $1 SUBSEP $3; r = "NA"
		  if ((k in g) && g[k] != "NA" && g[k] + 0 != 0 && $4 != "NA") r = sprintf("%.2f", $4 / g[k])
		  print $0, r }' "$SUMMARY.tmp" "$SUMMARY.tmp" >"$SUMMARY"
	rm -f "$SUMMARY.tmp"
}

# get WORKLOAD TARGET METRIC: the median, or NA
get() {
	awk -F'\t' -v w="$1" -v t="$2" -v m="$3" '$1 == w && $2 == t && $3 == m { print $4; f = 1 } END { if (!f) print "NA" }' "$SUMMARY"
}

ratio_of() {
	awk -F'\t' -v w="$1" -v t="$2" -v m="$3" '$1 == w && $2 == t && $3 == m { print $6; f = 1 } END { if (!f) print "NA" }' "$SUMMARY"
}

fmt() {		# fmt VALUE [DECIMALS]
	awk -v x="$1" -v d="${2:-1}" 'BEGIN { if (x == "NA" || x == "") print "-"; else printf "%.*f", d, x }'
}

label() {
	case $1 in
	direct) echo "plaintext direct" ;;
	pgtls) echo "PostgreSQL TLS" ;;
	*) echo "$1" ;;
	esac
}

# table WORKLOAD TITLE METRIC:HEADING:DECIMALS...
table() {
	local w=$1 title=$2 spec t m h d v r cell
	shift 2
	grep -q "^$w$TAB" "$SUMMARY" || return 0
	echo
	echo "### $title"
	echo
	local head="| target |" sep="|---|"
	for spec in "$@"; do
		IFS=: read -r m h d <<<"$spec"
		head="$head $h |"
		sep="$sep---:|"
	done
	echo "$head"
	echo "$sep"
	for t in "${ALL_TARGETS[@]}"; do
		grep -q "^$w$TAB$t$TAB" "$SUMMARY" || continue
		local row
		row="| $(label "$t") |"
		for spec in "$@"; do
			IFS=: read -r m h d <<<"$spec"
			v=$(get "$w" "$t" "$m")
			r=$(ratio_of "$w" "$t" "$m")
			cell=$(fmt "$v" "$d")
			if [ "$t" != pgsslgate ] && [ "$r" != NA ] && [ "$cell" != - ]; then
				cell="$cell (${r}×)"
			fi
			row="$row $cell |"
		done
		echo "$row"
	done
}

# verdict VALUE TARGET le|ge
verdict() {
	awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN {
		if (v == "NA" || v == "") { print "not measured"; exit }
		if ((op == "le" && v + 0 <= t + 0) || (op == "ge" && v + 0 >= t + 0)) print "met"; else print "MISSED" }'
}

targets_table() {
	local v b s
	echo
	echo "### Against the targets"
	echo
	echo "| figure | pgsslgate | target | verdict | PgBouncer here | stunnel here | PgBouncer (reference) | stunnel (reference) |"
	echo "|---|---:|---:|---|---:|---:|---:|---:|"
	row() {		# row LABEL WORKLOAD METRIC TARGET OP DECIMALS REFB REFS
		local op="≤"
		[ "$5" = le ] || op="≥"
		v=$(get "$2" pgsslgate "$3")
		b=$(get "$2" pgbouncer "$3")
		s=$(get "$2" stunnel "$3")
		echo "| $1 | $(fmt "$v" "$6") | $op $4 | $(verdict "$v" "$4" "$5") | $(fmt "$b" "$6") | $(fmt "$s" "$6") | $7 | $8 |"
	}
	row "CPU per query, pgbench -S, $CLIENTS clients (µs)" select proxy_us_per_txn 15 le 1 31.8 55.5
	row "CPU per new TLS session, RSA-2048 (µs)" connect-rsa proxy_us_per_session 475 le 0 "1,056" "2,179"
	row "CPU per new TLS session, ECDSA P-256 (µs)" connect-ecdsa proxy_us_per_session 125 le 0 660 "1,828"
	row "CPU-seconds per GB of COPY out over TLS" copy-out proxy_cpu_s_per_gb 0.6 le 2 2.70 1.28
	row "memory per idle TLS session (KiB)" idle kib_per_session 8 le 1 15.7 92.5
	# TPS against the best TLS peer of the same run
	local g best bestname=NA x t
	g=$(get select pgsslgate tps)
	best=NA
	for t in pgtls pgbouncer stunnel; do
		x=$(get select "$t" tps)
		[ "$x" != NA ] || continue
		if [ "$best" = NA ] || awk -v a="$x" -v b="$best" 'BEGIN { exit !(a > b) }'; then
			best=$x
			bestname=$t
		fi
	done
	local rr=NA
	if [ "$g" != NA ] && [ "$best" != NA ]; then
		rr=$(awk -v a="$g" -v b="$best" 'BEGIN { printf "%.2f", a / b }')
	fi
	echo "| pgbench -S TPS / best TLS peer ($(label "$bestname")) | $(fmt "$rr" 2)× | ≥ 1.10× | $(verdict "$rr" 1.10 ge) | $(fmt "$(get select pgbouncer tps)" 0) tps | $(fmt "$(get select stunnel tps)" 0) tps | | |"
	local held
	held=$(get idle pgsslgate held)
	local hv
	if [ "$held" = NA ]; then
		hv="not measured"
	elif [ "$IDLE" -lt 10000 ]; then
		hv="not attempted (BENCH_IDLE=$IDLE)"
	else
		hv=$(verdict "$held" 10000 ge)
	fi
	echo "| concurrent TLS sessions held (of $IDLE tried) | $(fmt "$held" 0) | 10,000 | $hv | $(fmt "$(get idle pgbouncer held)" 0) | $(fmt "$(get idle stunnel held)" 0) | | |"
}

report() {
	echo "## pgsslgate benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "Medians of $REPEATS repeats, targets rotated between repeats.  (N×) after a"
	echo "figure is that target's figure divided by pgsslgate's.  Proxy CPU is the"
	echo "proxy process's own utime+stime (/proc/PID/stat); server CPU is all of"
	echo "PostgreSQL's processes."
	echo
	echo "- machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
	echo "- pgsslgate: $("$GATE" --version 2>&1 | head -n 1) (git $(git -C "$TOP" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$TOP" diff --quiet -- src 2>/dev/null || echo ', with uncommitted changes in src/')), $GATE_INFO"
	echo "- pgsslgate start-up: $(grep -m 1 -o 'ready to accept connections.*' "$WORK/logs/pgsslgate.log" 2>/dev/null || echo '?')"
	echo "- PgBouncer: $("$PGBOUNCER" --version 2>&1 | head -n 1)"
	echo "- stunnel: $("$STUNNEL" -version 2>&1 | grep -m 1 '^stunnel')"
	echo "- OpenSSL: $(openssl version)"
	echo "- PostgreSQL: $("$PG_BINDIR/postgres" --version)"
	echo "- load average (1, 5, 15 min) at the start: $LOAD_START; at the end: $(cut -d" " -f1-3 /proc/loadavg); the run took $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", (b - a) / 60 }') min"
	echo "- settings: BENCH_REPEATS=$REPEATS BENCH_SECONDS=$DURATION BENCH_CLIENTS=$CLIENTS BENCH_JOBS=$JOBS BENCH_SCALE=$SCALE BENCH_COPY_MB=$COPY_MB BENCH_IDLE=$IDLE BENCH_IDLE_BACKEND=$IDLE_BACKEND BENCH_BACKEND=$BACKEND"
	echo "- TLS negotiated with each target (openssl s_client -starttls postgres, OpenSSL defaults as in libpq):"
	local t
	for t in "${ALL_TARGETS[@]}"; do
		[ -f "$WORK/probe-$t.txt" ] || continue
		echo "  - $(label "$t"): $(cat "$WORK/probe-$t.txt")"
		if [ -f "$WORK/probe-$t-ec.txt" ]; then
			echo "    with the ECDSA certificate: $(cat "$WORK/probe-$t-ec.txt")"
		fi
	done
	if grep -q "^speed$TAB" "$SUMMARY"; then
		echo
		echo "### Crypto floors (openssl speed, one core)"
		echo
		echo "| figure | value |"
		echo "|---|---:|"
		echo "| RSA-2048 sign (µs) | $(fmt "$(get speed openssl rsa2048_sign_us)") |"
		echo "| RSA-2048 verify (µs) | $(fmt "$(get speed openssl rsa2048_verify_us)") |"
		echo "| ECDSA P-256 sign (µs) | $(fmt "$(get speed openssl ecdsap256_sign_us)") |"
		echo "| ECDSA P-256 verify (µs) | $(fmt "$(get speed openssl ecdsap256_verify_us)") |"
		echo "| AES-256-GCM, 16 KB blocks (CPU-s per GB) | $(fmt "$(get speed openssl aes256gcm_16k_cpu_s_per_gb)" 3) |"
	fi
	table select "pgbench -S, $CLIENTS clients, -j $JOBS, ${DURATION} s" \
		tps:TPS:0 latency_ms:"latency ms":3 proxy_us_per_txn:"proxy CPU µs/txn":1 \
		server_us_per_txn:"server CPU µs/txn":1 errors:errors:0
	table connect-rsa "pgbench -C -S (a new session per transaction), RSA-2048 certificate" \
		tps:TPS:0 connect_ms:"connect ms":3 proxy_us_per_session:"proxy CPU µs/session":0 \
		server_us_per_session:"server CPU µs/session":0 errors:errors:0
	table connect-ecdsa "pgbench -C -S, ECDSA P-256 certificate" \
		tps:TPS:0 connect_ms:"connect ms":3 proxy_us_per_session:"proxy CPU µs/session":0 \
		server_us_per_session:"server CPU µs/session":0 errors:errors:0
	table copy-out "COPY out, $COPY_MB MiB ($COPY_ROWS rows of 1000 bytes)" \
		mb_per_s:"MiB/s":1 proxy_cpu_s_per_gb:"proxy CPU-s/GB":3 \
		server_cpu_s_per_gb:"server CPU-s/GB":3 proxy_rss_kib:"proxy RSS KiB":0 errors:errors:0
	table copy-in "COPY in (unlogged table), $COPY_MB MiB" \
		mb_per_s:"MiB/s":1 proxy_cpu_s_per_gb:"proxy CPU-s/GB":3 \
		server_cpu_s_per_gb:"server CPU-s/GB":3 proxy_rss_kib:"proxy RSS KiB":0 errors:errors:0
	table idle "$IDLE idle TLS sessions held (backend: $IDLE_BACKEND), fresh proxy each repeat" \
		kib_per_session:"KiB/session":2 held:held:0 errors:failed:0 rss_before_kib:"RSS before KiB":0 \
		rss_held_kib:"RSS held KiB":0 rss_after_close_kib:"RSS after close KiB":0
	if has_workload idle; then
		echo
		echo "PostgreSQL direct (plaintext or TLS) is left out of the idle test: it"
		echo "forks a process per session, so there is no single process to weigh."
	fi
	targets_table
	echo
	echo "### Commands"
	echo
	echo '```'
	cat "$CMDS"
	echo '```'
	local f
	for f in "$WORK/pgbouncer/pgbouncer.ini" "$WORK/stunnel/stunnel.conf" "$WORK/helper/pgbouncer.ini"; do
		[ -f "$f" ] || continue
		echo
		echo "${f#"$WORK"/} (last used):"
		echo '```'
		cat "$f"
		echo '```'
	done
	echo
	echo "postgresql.conf additions:"
	echo '```'
	sed -n '/^# added by bench\/run.sh/,$p' "$PG_DATA/postgresql.conf"
	echo '```'
}

# ---- main ---------------------------------------------------------------------------------------

main() {
	[ "$(id -u)" -eq 0 ] || say "not root: nothing will be installed, and PostgreSQL and PgBouncer run as $(id -un)"
	install_missing
	build_gate
	local t

	# Descriptors: two per proxied session, and the holder needs IDLE.
	local want=$((IDLE * 2 + 200)) hard
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
		ulimit -Hn "$want" 2>/dev/null || say "warning: the open file limit is $hard (cannot raise it to $want here): a proxy cannot hold more than about $(((hard - 100) / 2)) sessions"
	fi
	ulimit -n "$(ulimit -Hn)"

	LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgsslgate-bench.XXXXXX")
	chmod 0755 "$WORK"
	mkdir -p "$WORK/logs" "$WORK/out" "$RESULTS"
	RAW=$WORK/raw.tsv
	CMDS=$WORK/commands.txt
	SUMMARY=$WORK/summary.tsv
	: >"$RAW"
	: >"$CMDS"

	say "scratch directory $WORK"
	# Run a copy: src/pgsslgate may be rebuilt while this runs.
	mkdir -p "$WORK/bin"
	cp "$GATE_BUILT" "$WORK/bin/pgsslgate"
	GATE=$WORK/bin/pgsslgate
	GATE_INFO="built $(date -u -r "$GATE_BUILT" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$GATE" | cut -c1-12)"
	make_certs
	if has_workload idle; then
		# shellcheck disable=SC2046 # pkg-config prints several words
		cc -O2 -Wall -o "$WORK/idle_hold" "$BENCH/idle_hold.c" \
			$(pkg-config --cflags --libs libpq) || die "compiling idle_hold.c failed"
	fi
	pg_start
	say "PostgreSQL 15 on port $PG_PORT (max_connections $PG_MAX_CONN)"
	logcmd "$PGBENCH" -i -q -s "$SCALE" -h 127.0.0.1 -p "$PG_PORT" -U postgres postgres
	PGSSLMODE=disable run_cmd "$WORK/logs/pgbench-init.log" "$PGBENCH" -i -q -s "$SCALE" \
		-h 127.0.0.1 -p "$PG_PORT" -U postgres postgres ||
		{ tail -n 5 "$WORK/logs/pgbench-init.log" >&2; die "pgbench -i failed"; }
	copy_setup

	PORT[direct]=$PG_PORT
	PORT[pgtls]=$PG_PORT
	for t in "${PROXIES[@]}"; do
		PORT[$t]=$(free_port)
	done
	if [ "$IDLE_BACKEND" = pooler ] && has_workload idle; then
		HELPER_PORT=$(free_port)
		start_proxy helper rsa "$PG_PORT"
	fi
	start_proxies rsa
	for t in "${TARGETS[@]}"; do
		say "$(label "$t") on port ${PORT[$t]}: $(probe_target "$t" "$WORK/probe-$t.txt")"
	done

	local w
	for w in "${ALL_WORKLOADS[@]}"; do
		has_workload "$w" || continue
		case $w in
		speed) speed_run ;;
		idle)
			run_workload idle
			start_proxies rsa ;;
		connect-ecdsa)
			say "switching every TLS target to the ECDSA P-256 certificate"
			start_proxies ec
			has_target pgtls && pg_use_cert ec
			for t in "${TARGETS[@]}"; do
				[ "${SSLMODE[$t]}" = require ] || continue
				say "$(label "$t"): $(probe_target "$t" "$WORK/probe-$t-ec.txt")"
			done
			run_workload connect-ecdsa ;;
		*) run_workload "$w" ;;
		esac
	done
	summarize
	cp "$RAW" "$RESULTS/latest-raw.tsv"
	cp "$SUMMARY" "$RESULTS/latest.tsv"
	report >"$RESULTS/latest.txt"
	cat "$RESULTS/latest.txt"
	say "done: $RESULTS/latest.txt, latest.tsv (medians), latest-raw.tsv (every repeat)"
}

main "$@"
