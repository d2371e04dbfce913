#!/bin/bash
# drivers.sh: real PostgreSQL drivers, not only libpq, through pgsslgate to a
# real PostgreSQL 15 with SCRAM logins.  Prints TAP-ish lines and a matrix
# per driver; exits 0 when every test passed, 77 when a prerequisite is
# missing (a failure instead when CI=true), 99 when the setup itself broke,
# 1 otherwise.
#
# Run by make check, or by hand after make: bash tests/drivers.sh
# (ONLY_DRIVERS="psycopg asyncpg" runs just those, VERBOSE=1 shows every
# client's answer, KEEP_TMP=1 keeps the logs.)
#
# Each driver has one client, an executable tests/drivers/client-DRIVER
# (looked for in top_builddir first, then top_srcdir), called as
#
#   client-DRIVER ACTION key=value ...
#
# with the keys host, hostaddr, port, user, password, dbname (always given)
# and sslmode, sslrootcert, sslcert, sslkey, sslcrl, channel_binding, rows,
# meaning what they mean to libpq.  The actions, and the one line each
# prints on stdout before exiting 0:
#
#   connect  connect, SELECT 1: "OK ssl=on" or "OK ssl=off", whether this
#            client's own connection is TLS (from the driver's API, not
#            pg_stat_ssl, which sees the gate's leg to the backend)
#   big      SELECT i, md5(i::text) FROM generate_series(1, rows) i, hashed
#            as the text "i,md5\n" per row in order:
#            "OK ssl=on|off rows=N bytes=B md5=HEX"
#   cancel   SELECT pg_sleep(30), cancelled after 1 s with the driver's own
#            cancel: "OK cancelled sqlstate=57014" when it fails so within 10 s
#
# A failure prints "ERROR sqlstate=XXXXX message" (sqlstate=none when the
# driver gives none) and exits 1; a mode the driver cannot express prints
# "UNSUPPORTED why" and exits 3, recorded as n/a (never a pass; the README's
# compatibility table says so).  A client sets its own connect timeout
# (10 s) and overall timeout (60 s); the harness kills it after 90 s anyway.
# shellcheck disable=SC2317 # (log_file_count_at_least runs through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

# The drivers that must have a client (the one list to extend when a driver
# joins); any other tests/drivers/client-* is run too.  A listed client that
# is missing, or whose driver is not installed, fails under CI=true.
DRIVERS="psycopg psycopg-async asyncpg node-pg pgjdbc nblibpq"
ONLY_DRIVERS=${ONLY_DRIVERS:-}

SSLMODES="disable allow prefer require verify-ca verify-full"
MATRIX_POSTURES="on,on on,off off,off"
# About 54 MB of "i,md5\n" text (40 bytes a row): over 50 MiB through the
# gate.
BIG_ROWS=${BIG_ROWS:-1350000}
BIG_MIN_BYTES=$((50 * 1024 * 1024))
CLIENT_TIMEOUT=90

declare -A PORT=()		# gate name -> its port
declare -A OBSERVED=()		# "driver,cell" -> TLS, plain, refused, n/a or ?
declare -A EXPECTED=()		# "driver,cell" -> what the test wanted
declare -A CLIENT_OF=()		# driver -> its executable
RUN_DRIVERS=()

# ---- the PostgreSQL: ssl=on, SCRAM over host (TLS or not) --------------------

# The one PostgreSQL of all drivers serves server-chain.crt itself, so that
# a gate with backend_sslmode=require reaches it over TLS and one holding
# the same certificate keeps SCRAM channel binding intact end to end.
start_postgres() {
	local dir=$WORK/pg-tls
	mkdir -p "$dir"
	cp "$CERTS/server-chain.crt" "$dir/server.crt"
	cp "$CERTS/server.key" "$dir/server.key"
	chmod 0600 "$dir/server.key"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$dir"
	fi
	pg_start "ssl = on" "ssl_cert_file = '$dir/server.crt'" \
		"ssl_key_file = '$dir/server.key'"
	pg_create_roles alice carol
}

# ---- gates, started once and shared by every driver --------------------------

start_gates() {
	tls_gate_start ssl_on_require_on on "$PG_PORT" || true
	tls_gate_start ssl_on_require_off off "$PG_PORT" || true
	PORT[ssl_off_require_off]=$(free_port)
	gate_start ssl_off_require_off -c listen_addresses=127.0.0.1 \
		-c "port=${PORT[ssl_off_require_off]}" -c backend_host=127.0.0.1 \
		-c "backend_port=$PG_PORT" -c ssl=off -c require_ssl=off \
		-c log_connections=on || true
	tls_gate_start wronghost on "$PG_PORT" \
		-c "ssl_cert_file=$CERTS/wronghost-chain.crt" \
		-c "ssl_key_file=$CERTS/wronghost.key" || true
	tls_gate_start clientcert on "$PG_PORT" -c clientcert=verify-ca \
		-c "ssl_ca_file=$CERTS/client-ca.crt" \
		-c "ssl_crl_file=$CERTS/crl-bundle.crl" || true
	# TLS to the backend, with the backend's own certificate and key.
	tls_gate_start tls_backend off "$PG_PORT" -c backend_sslmode=require || true
}

stop_gates() {
	local name
	for name in ssl_on_require_on ssl_on_require_off ssl_off_require_off \
		wronghost clientcert tls_backend; do
		if [ -n "${GATE_PID[$name]:-}" ]; then
			gate_stop "$name"
		fi
	done
}

# The setting the SCRAM cells rely on, asserted once with libpq.
test_setup() {
	check "setup: the PostgreSQL asks for a password over TCP (a wrong one is refused)" \
		"$PQPROBE" --expect refused --error-contains "password authentication failed" \
		"$(conninfo "${PORT[ssl_on_require_off]}" disable password=wrong)"
	check "setup: gate tls_backend reaches PostgreSQL over TLS (pg_stat_ssl of its session)" \
		"$PQPROBE" --query "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
		--expect-value t "$(conninfo "${PORT[tls_backend]}" verify-full)"
	check "setup: the other gates reach it in plaintext" \
		"$PQPROBE" --query "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
		--expect-value f "$(conninfo "${PORT[ssl_on_require_on]}" verify-full)"
}

# ---- clients -----------------------------------------------------------------

# find_drivers: RUN_DRIVERS and CLIENT_OF from ONLY_DRIVERS (when set), or
# DRIVERS plus every client present.
find_drivers() {
	local d f list=${ONLY_DRIVERS:-$DRIVERS} dir
	if [ -z "$ONLY_DRIVERS" ]; then
		for dir in "$top_builddir/tests/drivers" "$top_srcdir/tests/drivers"; do
			for f in "$dir"/client-*; do
				[ -x "$f" ] || continue
				d=${f##*/client-}
				case " $list " in *" $d "*) ;; *) list+=" $d" ;; esac
			done
		done
	fi
	for d in $list; do
		for f in "$top_builddir/tests/drivers/client-$d" \
			"$top_srcdir/tests/drivers/client-$d"; do
			if [ -x "$f" ]; then
				CLIENT_OF[$d]=$f
				break
			fi
		done
		if [ -z "${CLIENT_OF[$d]:-}" ]; then
			driver_missing "$d" "no executable tests/drivers/client-$d"
		elif ! driver_runs "$d"; then
			driver_missing "$d" "$(driver_needs "$d")"
		else
			RUN_DRIVERS+=("$d")
		fi
	done
}

# A driver that cannot run is skipped with a note, but fails under CI=true.
driver_missing() {
	if [ "${CI:-}" = true ]; then
		fail "driver $1 can run: $2"
	else
		note "SKIP driver $1: $2"
	fi
}

# driver_needs DRIVER: what it needs installed, for the message.
driver_needs() {
	case $1 in
	psycopg | psycopg-async) echo "psycopg 3 for /usr/bin/python3 (Debian package python3-psycopg)" ;;
	asyncpg) echo "asyncpg for /usr/bin/python3 (Debian package python3-asyncpg)" ;;
	*) echo "what tests/drivers/client-$1 needs" ;;
	esac
}

# driver_runs DRIVER: its prerequisites are there (unknown drivers: yes).
driver_runs() {
	case $1 in
	psycopg | psycopg-async) /usr/bin/python3 -c "import psycopg" 2>/dev/null ;;
	asyncpg) /usr/bin/python3 -c "import asyncpg" 2>/dev/null ;;
	*) return 0 ;;
	esac
}

# client DRIVER ACTION PORT [KEY=VALUE...]: run the client as postgres with
# its password (later keys override), its answer in $WORK/client.out.
# Returns its exit status.
CLIENT_OUT=
client() {
	local d=$1 action=$2 port=$3 rc=0
	shift 3
	CLIENT_OUT=$WORK/client.out
	timeout -k 5 "$CLIENT_TIMEOUT" "${CLIENT_OF[$d]}" "$action" host=localhost \
		hostaddr=127.0.0.1 "port=$port" user=postgres "password=$PG_PASSWORD" \
		dbname=postgres "sslrootcert=$CERTS/root.crt" "$@" \
		>"$CLIENT_OUT" 2>"$WORK/client.err" || rc=$?
	return "$rc"
}

# answer_outcome STATUS: what the client's answer says happened.
answer_outcome() {
	local line
	line=$(head -n 1 "$CLIENT_OUT")
	case $1,$line in
	"0,OK ssl=on" | "0,OK ssl=on "*) echo TLS ;;
	"0,OK ssl=off" | "0,OK ssl=off "*) echo plain ;;
	"0,OK cancelled sqlstate=57014") echo cancelled ;;
	"1,ERROR sqlstate="*) echo refused ;;
	"3,UNSUPPORTED "*) echo n/a ;;
	*) echo "?" ;;
	esac
}

# show_client: the client's answer (and stderr) as TAP comments.
show_client() {
	echo "client answer:"
	show "$CLIENT_OUT"
	if [ -s "$WORK/client.err" ]; then
		echo "its stderr:"
		show "$WORK/client.err"
	fi
}

# cell DRIVER KEY DESCRIPTION WANT ACTION PORT [KEY=VALUE...]: one test; the
# outcome is kept in OBSERVED[DRIVER,KEY].  WANT is TLS, plain, refused or
# cancelled.  n/a is neither a pass nor a failure: a note.
cell() {
	local d=$1 key=$2 desc="$1: $3" want=$4 rc=0 seen
	shift 4
	client "$d" "$@" || rc=$?
	seen=$(answer_outcome "$rc")
	OBSERVED[$d,$key]=$seen
	EXPECTED[$d,$key]=$want
	if [ "$seen" = n/a ]; then
		note "n/a $desc: $(head -n 1 "$CLIENT_OUT")"
	elif [ "$seen" = "$want" ]; then
		ok "$desc -> $want"
		if [ "${VERBOSE:-0}" = 1 ]; then show "$CLIENT_OUT"; fi
	else
		fail "$desc -> $want (got $seen, exit status $rc)"
		show_client
	fi
}

# ---- each driver's cells ---------------------------------------------------------

test_matrix() {
	local d=$1 pair ssl require mode want
	for pair in $MATRIX_POSTURES; do
		ssl=${pair%,*} require=${pair#*,}
		for mode in $SSLMODES; do
			want=$(sslmode_outcome "$ssl" "$require" "$mode")
			cell "$d" "$ssl,$require,$mode" \
				"matrix ssl=$ssl require_ssl=$require sslmode=$mode" "$want" \
				connect "${PORT[$(gate_name "$ssl" "$require")]}" "sslmode=$mode"
		done
	done
}

test_wrong_host() {
	cell "$1" wronghost "verify-full against a certificate for wronghost.example" \
		refused connect "${PORT[wronghost]}" sslmode=verify-full
	cell "$1" wronghost_ca "verify-ca against the same certificate (control: only the name is wrong)" \
		TLS connect "${PORT[wronghost]}" sslmode=verify-ca
}

test_client_certs() {
	local port=${PORT[clientcert]}
	cell "$1" cert_valid "alice's client certificate (clientcert=verify-ca, CRL)" TLS \
		connect "$port" sslmode=verify-full user=alice \
		"sslcert=$CERTS/alice.crt" "sslkey=$CERTS/alice.key"
	cell "$1" cert_revoked "carol's revoked client certificate" refused \
		connect "$port" sslmode=verify-full user=carol \
		"sslcert=$CERTS/carol.crt" "sslkey=$CERTS/carol.key"
}

# SCRAM over each pair of legs: client to gate plaintext or TLS, gate to
# PostgreSQL plaintext or TLS.  PostgreSQL offers SCRAM-SHA-256-PLUS on its
# TLS leg; a driver that binds the channel binds to the certificate it saw,
# which for the TLS/TLS pair is the backend's own (the gate serves it too).
test_scram_legs() {
	local d=$1 plain=${PORT[ssl_on_require_off]} tls=${PORT[tls_backend]}
	cell "$d" scram_plain_plain "SCRAM, plaintext to the gate, plaintext to PostgreSQL" \
		plain connect "$plain" sslmode=disable
	cell "$d" scram_tls_plain "SCRAM, TLS to the gate, plaintext to PostgreSQL" \
		TLS connect "$plain" sslmode=verify-full
	cell "$d" scram_plain_tls "SCRAM, plaintext to the gate, TLS to PostgreSQL" \
		plain connect "$tls" sslmode=disable
	cell "$d" scram_tls_tls "SCRAM, TLS to the gate, TLS to PostgreSQL (same certificate)" \
		TLS connect "$tls" sslmode=verify-full
	# Binding demanded: it holds only because both legs show one certificate.
	cell "$d" scram_tls_tls_bound "SCRAM-SHA-256-PLUS demanded (channel_binding=require), TLS/TLS, same certificate" \
		TLS connect "$tls" sslmode=verify-full channel_binding=require
	# Binding declined: the plain/TLS pair with the client not binding.
	cell "$d" scram_plain_tls_unbound "SCRAM without binding (channel_binding=disable), plaintext to the gate, TLS to PostgreSQL" \
		plain connect "$tls" sslmode=disable channel_binding=disable
}

# PostgreSQL's own md5 of the text every client hashes.
BIG_MD5=
big_md5() {
	BIG_MD5=$(pg_admin "SELECT md5(string_agg(i || ',' || md5(i::text) || E'\\n', '' ORDER BY i)) FROM generate_series(1, $BIG_ROWS) i") ||
		die "PostgreSQL could not compute the md5 of the big result"
}

test_big() {
	local d=$1 rc=0 line t0
	local desc="$d: a SELECT of $BIG_ROWS rows (over 50 MiB) over TLS arrives byte for byte"
	t0=$EPOCHREALTIME
	client "$d" big "${PORT[ssl_on_require_on]}" sslmode=verify-full \
		"rows=$BIG_ROWS" || rc=$?
	line=$(head -n 1 "$CLIENT_OUT")
	OBSERVED[$d,big]=$(answer_outcome "$rc")
	EXPECTED[$d,big]=ok
	if [ "$rc" = 3 ]; then
		note "n/a $desc: $line"
	elif big_matches "$rc" "$line"; then
		OBSERVED[$d,big]="ok"
		ok "$desc ($(since "$t0") s)"
		if [ "${VERBOSE:-0}" = 1 ]; then show "$CLIENT_OUT"; fi
	else
		OBSERVED[$d,big]="wrong"
		fail "$desc (PostgreSQL's md5 $BIG_MD5, at least $BIG_MIN_BYTES bytes)"
		show_client
	fi
}

big_matches() {		# big_matches STATUS LINE
	local rows bytes md5
	[ "$1" = 0 ] || return 1
	[[ $2 =~ ^OK\ ssl=on\ rows=([0-9]+)\ bytes=([0-9]+)\ md5=([0-9a-f]{32})$ ]] ||
		return 1
	rows=${BASH_REMATCH[1]} bytes=${BASH_REMATCH[2]} md5=${BASH_REMATCH[3]}
	[ "$rows" = "$BIG_ROWS" ] && [ "$bytes" -ge "$BIG_MIN_BYTES" ] &&
		[ "$md5" = "$BIG_MD5" ]
}

# The cancel through require_ssl=on over TLS; PostgreSQL's log must gain the
# 57014 ("canceling statement due to user request") it answered with.
test_cancel() {
	local d=$1 log=$PG_DIR/postgres.log before
	before=$(grep -c "canceling statement due to user request" "$log" || true)
	cell "$d" cancel "pg_sleep(30) cancelled after 1 s with the driver's own cancel" \
		cancelled cancel "${PORT[ssl_on_require_on]}" sslmode=verify-full
	if [ "${OBSERVED[$d,cancel]}" = cancelled ]; then
		check "$d: PostgreSQL logged the cancel (57014, canceling statement due to user request)" \
			log_file_count_at_least "$log" "$((before + 1))" \
			"canceling statement due to user request"
	fi
}

# log_file_count_at_least LOG N PATTERN: N or more lines match, within 3 s.
log_file_count_at_least() {
	local tries=60 got
	while :; do
		got=$(grep -Ec -- "$3" "$1" || true)
		[ "$got" -lt "$2" ] || return 0
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "$got lines (not $2 or more) of $1 match $3"
			return 1
		fi
		sleep 0.05
	done
}

# ---- the tables --------------------------------------------------------------

# seen DRIVER KEY: the outcome, and the expected one after it when different.
seen() {
	local got=${OBSERVED[$1,$2]:-"-"} want=${EXPECTED[$1,$2]:-}
	if [ -z "$want" ] || [ "$got" = "$want" ] || [ "$got" = n/a ]; then
		echo "$got"
	else
		echo "$got($want)!"
	fi
}

print_driver() {
	local d=$1 pair ssl require mode line
	note ""
	note "$d: observed (expected where different, marked !)"
	note "$(printf '%-9s %-11s' ssl require_ssl; for mode in $SSLMODES; do printf ' %-11s' "$mode"; done)"
	for pair in $MATRIX_POSTURES; do
		ssl=${pair%,*} require=${pair#*,}
		line=$(printf '%-9s %-11s' "$ssl" "$require")
		for mode in $SSLMODES; do
			line+=$(printf ' %-11s' "$(seen "$d" "$ssl,$require,$mode")")
		done
		note "$line"
	done
	note "SCRAM client/backend leg: plain/plain $(seen "$d" scram_plain_plain)," \
		"TLS/plain $(seen "$d" scram_tls_plain), plain/TLS $(seen "$d" scram_plain_tls)," \
		"TLS/TLS $(seen "$d" scram_tls_tls);" \
		"channel_binding=require TLS/TLS $(seen "$d" scram_tls_tls_bound)," \
		"channel_binding=disable plain/TLS $(seen "$d" scram_plain_tls_unbound)"
	note "wrong host: verify-full $(seen "$d" wronghost), verify-ca $(seen "$d" wronghost_ca);" \
		"client cert $(seen "$d" cert_valid)," \
		"revoked cert $(seen "$d" cert_revoked), big $(seen "$d" big)," \
		"cancel $(seen "$d" cancel)"
}

main() {
	local d t0
	needs pqprobe
	command -v timeout >/dev/null 2>&1 || missing "timeout (Debian package coreutils)"
	setup_work
	make_certs
	find_drivers
	if [ "${#RUN_DRIVERS[@]}" -eq 0 ]; then
		[ "$TESTS_FAILED" -eq 0 ] || finish
		missing "no driver client can run"
	fi
	start_postgres
	note "PostgreSQL (ssl=on, SCRAM) on 127.0.0.1:$PG_PORT, scratch in $WORK"
	start_gates
	test_setup
	big_md5
	for d in "${RUN_DRIVERS[@]}"; do
		t0=$EPOCHREALTIME
		note "driver $d: ${CLIENT_OF[$d]}"
		test_matrix "$d"
		test_wrong_host "$d"
		test_client_certs "$d"
		test_scram_legs "$d"
		test_big "$d"
		test_cancel "$d"
		note "driver $d took $(since "$t0") s"
	done
	stop_gates
	for d in "${RUN_DRIVERS[@]}"; do
		print_driver "$d"
	done
	finish
}

main "$@"
