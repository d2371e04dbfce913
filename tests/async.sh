#!/bin/bash
# async.sh: libpq in non-blocking mode through pgsslgate, as psycopg 3's
# async connections, node's pg-native and ruby-pg use it (tests/nblibpq.c,
# run through the driver contract's tests/drivers/client-nblibpq).  Such a
# client polls the socket and waits forever if the gate's TLS records are
# larger than libpq reads at once: the rest of a record stays inside OpenSSL
# and the socket says nothing more.  Prints TAP-ish lines; exits 0 when
# every test passed, 77 when a prerequisite is missing (a failure instead
# when CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make check: bash tests/async.sh
# (VERBOSE=1 shows every client's output, KEEP_TMP=1 keeps the logs,
# ASYNC_RUNS=N runs the stall workload N times, 5 by default.)
# shellcheck disable=SC2317 # (helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

CLIENT=$top_srcdir/tests/drivers/client-nblibpq
RUNS=${ASYNC_RUNS:-5}
APP_USER=app
APP_PASSWORD='nb-libpq-secret'

declare -A PORT=()

# The client logs in with a password, by SCRAM, as an application would.
scram_user() {
	"$PQPROBE" --query "CREATE ROLE $APP_USER LOGIN PASSWORD '$APP_PASSWORD'" \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable" \
		>"$WORK/role.log" 2>&1 || {
		show "$WORK/role.log"
		die "could not create role $APP_USER"
	}
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		host all $APP_USER 127.0.0.1/32 scram-sha-256
		host all all 127.0.0.1/32 trust
	EOF
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >/dev/null 2>&1 ||
		die "could not reload PostgreSQL"
	sleep 0.5
}

# run_client ACTION PORT SSLMODE [KEY=VALUE...]: the client through the gate
# on PORT, as APP_USER with its password.
run_client() {
	local action=$1 port=$2 mode=$3
	shift 3
	"$CLIENT" "$action" host=localhost hostaddr=127.0.0.1 "port=$port" \
		"user=$APP_USER" "password=$APP_PASSWORD" dbname=postgres \
		"sslmode=$mode" "sslrootcert=$CERTS/root.crt" "$@"
}

# prints PATTERN ACTION PORT SSLMODE [KEY=VALUE...]: the client exits 0
# and its one line of output matches PATTERN (an extended regex).
prints() {
	local pattern=$1 out
	shift
	out=$(run_client "$@") || { echo "$out"; return 1; }
	echo "$out"
	grep -Eq -- "$pattern" <<<"$out"
}

# record_max_within FILE N: the OK line in FILE names a largest record of
# at most N bytes.
record_max_within() {
	local n
	n=$(sed -n 's/^OK .* record_max=\([0-9]*\)$/\1/p' "$1")
	echo "largest TLS record received: ${n:-none} bytes"
	[ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -le "$2" ]
}

test_stall() {
	local port=${PORT[tls]} i
	for i in $(seq 1 "$RUNS"); do
		check "non-blocking libpq over TLS, run $i of $RUNS: ten queries of 300 rows of 7000 bytes all arrive within 20 s" \
			prints '^OK ssl=on queries=10 rows=3000 ' stall "$port" verify-full timeout=20
	done
	cp "$CHECK_OUT" "$WORK/stall.out"
	# 8 KiB of data, with TLS 1.3's type byte and tag (at most 256 more).
	check "the gate's records to the client carry at most 8 KiB: the largest received in the last run is at most 8192 + 256 bytes" \
		record_max_within "$WORK/stall.out" $((8192 + 256))
}

test_contract() {
	local tls=${PORT[tls]} plain=${PORT[plain]} want
	check "connect over TLS through the gate prints OK ssl=on" \
		prints '^OK ssl=on$' connect "$tls" verify-full
	check "connect with sslmode=disable through a require_ssl=off gate prints OK ssl=off" \
		prints '^OK ssl=off$' connect "$plain" disable
	want=$("$PQPROBE" --query "SELECT md5(string_agg(i || ',' || md5(i::text) || E'\\n', '' ORDER BY i)) FROM generate_series(1, 20000) i" \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable" |
		sed -n 's/^query ok: //p')
	[ -n "$want" ] || want=unknown
	check "big, 20000 rows over TLS: the md5 of the rows is PostgreSQL's" \
		prints "^OK ssl=on rows=20000 bytes=[0-9]+ md5=$want$" big "$tls" verify-full rows=20000
	check "cancel over TLS: PQcancel ends pg_sleep(30) with 57014" \
		prints '^OK cancelled sqlstate=57014$' cancel "$tls" verify-full
	check "a wrong password is an ERROR line naming the password, exit 1" \
		bash -c '! out=$("$0" connect host=127.0.0.1 port="$1" user='"$APP_USER"' password=wrong dbname=postgres sslmode=require); echo "$out"; grep -Eq "^ERROR sqlstate=[^ ]+ .*password" <<<"$out"' \
		"$CLIENT" "$tls"
}

main() {
	needs pqprobe nblibpq
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	scram_user
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"
	tls_gate_start tls on "$PG_PORT" || true
	tls_gate_start plain off "$PG_PORT" || true
	[ -n "${GATE_PID[tls]:-}" ] && [ -n "${GATE_PID[plain]:-}" ] || finish
	test_stall
	test_contract
	gate_stop tls
	gate_stop plain
	finish
}

main "$@"
