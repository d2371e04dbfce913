#!/bin/bash
# integration.sh: pgsslgate between real libpq clients and a real
# PostgreSQL 15.  Prints TAP-ish lines; exits 0 when every test passed, 77
# when a prerequisite is missing (a failure instead when CI=true), 99 when
# the setup itself broke, 1 otherwise.
#
# Run by make check, or by hand after make: bash tests/integration.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

SSLMODES="disable allow prefer require verify-ca verify-full"
SERVER_SETTINGS="on,on on,off off,on off,off"

declare -A PORT=()		# gate name -> its port
declare -A OBSERVED=()		# "ssl,require_ssl,sslmode" -> TLS/plain/refused

# ---- gates -------------------------------------------------------------------

# start_gate NAME SSL REQUIRE_SSL [CERT KEY [MORE ARGS...]]: a gate in front of
# the test PostgreSQL on a fresh port, kept in PORT[NAME].  Returns 1 if it
# did not start (counted as a failed test).
start_gate() {
	local name=$1 ssl=$2 require=$3 cert=${4:-} key=${5:-}
	local -a args
	shift $(($# < 5 ? $# : 5))
	PORT[$name]=$(free_port)
	args=(-c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}"
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT"
		-c "ssl=$ssl" -c "require_ssl=$require" -c log_connections=on)
	if [ -n "$cert" ]; then
		args+=(-c "ssl_cert_file=$cert" -c "ssl_key_file=$key")
	fi
	gate_start "$name" "${args[@]}" "$@"
}

# ---- the matrix ----------------------------------------------------------------

start_matrix_gates() {
	local pair ssl require
	for pair in $SERVER_SETTINGS; do
		ssl=${pair%,*} require=${pair#*,}
		if [ "$ssl" = on ]; then
			start_gate "$(gate_name "$ssl" "$require")" "$ssl" "$require" \
				"$CERTS/server-chain.crt" "$CERTS/server.key" || true
		else
			start_gate "$(gate_name "$ssl" "$require")" "$ssl" "$require" || true
		fi
	done
}

test_matrix() {
	local pair ssl require mode want port
	for pair in $SERVER_SETTINGS; do
		ssl=${pair%,*} require=${pair#*,}
		port=${PORT[$(gate_name "$ssl" "$require")]}
		for mode in $SSLMODES; do
			want=$(sslmode_outcome "$ssl" "$require" "$mode")
			# shellcheck disable=SC2046
			check "matrix ssl=$ssl require_ssl=$require sslmode=$mode -> $want" \
				"$PQPROBE" $(probe_expectation "$want") "$(conninfo "$port" "$mode")"
			OBSERVED[$ssl,$require,$mode]=$(observed_outcome "$CHECK_OUT")
		done
	done
}

print_matrix() {
	local pair ssl require mode line
	note ""
	note "observed (expected where different):"
	note "$(printf '%-9s %-11s' ssl require_ssl; for mode in $SSLMODES; do printf ' %-11s' "$mode"; done)"
	for pair in $SERVER_SETTINGS; do
		ssl=${pair%,*} require=${pair#*,}
		line=$(printf '%-9s %-11s' "$ssl" "$require")
		for mode in $SSLMODES; do
			line+=$(printf ' %-11s' "$(matrix_cell "$ssl" "$require" "$mode")")
		done
		note "$line"
	done
}

matrix_cell() {
	local seen=${OBSERVED[$1,$2,$3]:-"-"} want
	want=$(sslmode_outcome "$1" "$2" "$3")
	if [ "$seen" = "$want" ]; then
		echo "$seen"
	else
		echo "$seen($want)!"
	fi
}

# ---- logins ----------------------------------------------------------------------

# The matrix logs in with SCRAM (lib.sh's pg_start); here the methods where
# a gate in the middle changes something, or where they differ.  SCRAM,
# md5 and password all run between libpq and PostgreSQL: the gate relays
# them, over TLS on the client's leg or not.
test_logins() {
	local tls=${PORT[ssl_on_require_on]} plain=${PORT[ssl_off_require_off]}
	local role
	check "SCRAM through require_ssl=on: the session is postgres's" \
		"$PQPROBE" --ssl 1 --query "SELECT current_user" --expect-value postgres \
		"$(conninfo "$tls" verify-full)"
	check "SCRAM with a wrong password is refused with 'password authentication failed'" \
		"$PQPROBE" --expect refused --error-contains "password authentication failed" \
		"$(conninfo "$tls" verify-full password=wrong)"
	# The gate ends TLS, so PostgreSQL (ssl=off behind it) cannot offer
	# SCRAM-SHA-256-PLUS: a client demanding channel binding gives up.
	check "SCRAM with channel_binding=require over TLS to the gate, plaintext behind it: refused by libpq" \
		"$PQPROBE" --expect refused --error-contains "channel binding" \
		"$(conninfo "$tls" verify-full channel_binding=require)"
	for role in "$PG_MD5_ROLE" "$PG_CLEARTEXT_ROLE"; do
		check "$role (pg_hba $(login_method "$role")) logs in over TLS through require_ssl=on" \
			"$PQPROBE" --ssl 1 --query "SELECT current_user" --expect-value "$role" \
			"$(conninfo "$tls" verify-full "user=$role")"
		check "$role (pg_hba $(login_method "$role")) logs in in plaintext through ssl=off" \
			"$PQPROBE" --ssl 0 --query "SELECT current_user" --expect-value "$role" \
			"$(conninfo "$plain" disable "user=$role")"
		check "$role (pg_hba $(login_method "$role")) with a wrong password is refused" \
			"$PQPROBE" --expect refused --error-contains "password authentication failed" \
			"$(conninfo "$tls" verify-full "user=$role" password=wrong)"
	done
	# libpq refuses to send a password in clear or as md5 when it was told to
	# bind the channel: neither method can.
	check "md5 with channel_binding=require is refused by libpq (md5 cannot bind)" \
		"$PQPROBE" --expect refused --error-contains "channel binding" \
		"$(conninfo "$tls" verify-full "user=$PG_MD5_ROLE" channel_binding=require)"
	check "password with channel_binding=require is refused by libpq (cleartext cannot bind)" \
		"$PQPROBE" --expect refused --error-contains "channel binding" \
		"$(conninfo "$tls" verify-full "user=$PG_CLEARTEXT_ROLE" channel_binding=require)"
}

login_method() {
	case $1 in
	"$PG_MD5_ROLE") echo md5 ;;
	"$PG_CLEARTEXT_ROLE") echo password ;;
	*) echo scram-sha-256 ;;
	esac
}

# ---- TLS details -------------------------------------------------------------

test_refusal_wording() {
	check "ssl=on require_ssl=on refuses sslmode=disable saying it requires SSL" \
		"$PQPROBE" --expect refused --error-contains "requires SSL" \
		"$(conninfo "${PORT[ssl_on_require_on]}" disable)"
}

test_untrusted_roots() {
	local port=${PORT[ssl_on_require_on]}
	check "verify-ca with a rogue sslrootcert is refused" \
		"$PQPROBE" --expect refused \
		"$(conninfo "$port" verify-ca "sslrootcert=$CERTS/rogue.crt")"
	check "require with a rogue sslrootcert is refused (libpq verifies when a root file exists)" \
		"$PQPROBE" --expect refused \
		"$(conninfo "$port" require "sslrootcert=$CERTS/rogue.crt")"
}

test_chain_sent_whole() {
	check "verify-full trusting only root.crt connects: the intermediate of server-chain.crt is sent" \
		"$PQPROBE" --expect connected --ssl 1 \
		"$(conninfo "${PORT[ssl_on_require_on]}" verify-full)"
	# The control: without the intermediate the same client cannot verify.
	start_gate leaf_only on on "$CERTS/server.crt" "$CERTS/server.key" || return 0
	check "verify-ca against a certificate file without the intermediate is refused (control)" \
		"$PQPROBE" --expect refused "$(conninfo "${PORT[leaf_only]}" verify-ca)"
	gate_stop leaf_only
}

test_wrong_host() {
	start_gate wronghost on on "$CERTS/wronghost-chain.crt" "$CERTS/wronghost.key" ||
		return 0
	check "verify-full against a certificate for wronghost.example is refused" \
		"$PQPROBE" --expect refused --error-contains "does not match host name" \
		"$(conninfo "${PORT[wronghost]}" verify-full)"
	check "verify-ca against a certificate for wronghost.example connects" \
		"$PQPROBE" --expect connected --ssl 1 "$(conninfo "${PORT[wronghost]}" verify-ca)"
	gate_stop wronghost
}

test_ecdsa() {
	start_gate ecdsa on on "$CERTS/server-ec-chain.crt" "$CERTS/server-ec.key" ||
		return 0
	check "an ECDSA P-256 certificate chain serves verify-full over TLS" \
		"$PQPROBE" --expect connected --ssl 1 "$(conninfo "${PORT[ecdsa]}" verify-full)"
	gate_stop ecdsa
}

# ---- protocol abuse ------------------------------------------------------------

test_injection() {
	local tls_port=${PORT[ssl_on_require_on]} plain_port=${PORT[ssl_off_require_off]}
	local mode
	check "SSLRequest and StartupMessage in one write get 'S' then only 08P01 errors, never 'R'" \
		"$RAWPROBE" inject 127.0.0.1 "$tls_port"
	for mode in badlen truncated garbage; do
		check "rawprobe $mode against ssl=on gets an error or EOF in time" \
			"$RAWPROBE" "$mode" 127.0.0.1 "$tls_port"
	done
	check "a second SSLRequest after 'N' gets an error or EOF, not another 'N'" \
		"$RAWPROBE" double-ssl 127.0.0.1 "$plain_port"
	check "GSSENCRequest is declined and a plaintext StartupMessage then authenticates" \
		"$RAWPROBE" gss-then-startup 127.0.0.1 "$plain_port"
	check "the ssl=on gate still serves a normal connection after the abuse" \
		"$PQPROBE" --expect connected --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(conninfo "$tls_port" verify-full)"
	check "the ssl=off gate still serves a normal connection after the abuse" \
		"$PQPROBE" --expect connected --ssl 0 --query "SELECT 1" --expect-value 1 \
		"$(conninfo "$plain_port" disable)"
}

# ---- relaying ------------------------------------------------------------------

test_cancel() {
	check "a plaintext CancelRequest through require_ssl=on stops pg_sleep(30) with 57014" \
		"$PQPROBE" --query "SELECT pg_sleep(30)" --cancel-after 500 --timeout 5 \
		"$(conninfo "${PORT[ssl_on_require_on]}" require)"
}

test_queries() {
	local tls_port=${PORT[ssl_on_require_on]} big
	check "SELECT 1 over TLS returns 1" \
		"$PQPROBE" --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(conninfo "$tls_port" verify-full)"
	check "SELECT current_user over TLS returns postgres" \
		"$PQPROBE" --ssl 1 --query "SELECT current_user" --expect-value postgres \
		"$(conninfo "$tls_port" verify-full)"
	check "SELECT current_user in plaintext returns postgres" \
		"$PQPROBE" --ssl 0 --query "SELECT current_user" --expect-value postgres \
		"$(conninfo "${PORT[ssl_off_require_off]}" disable)"
	check "a 1 MB result comes back whole over TLS" \
		"$PQPROBE" --ssl 1 --query "SELECT repeat('x', 1000000)" --expect-length 1000000 \
		"$(conninfo "$tls_port" verify-full)"
	big=$(printf '%0100000d' 0)
	check "a 100 kB query goes through whole over TLS" \
		"$PQPROBE" --ssl 1 --query "SELECT length('$big')" --expect-value 100000 \
		"$(conninfo "$tls_port" verify-full)"
}

# Bulk transfers and pipelined queries over TLS: the relay reads every side
# itself, with OpenSSL reading ahead, pausing a side while the other is
# slow and going on from the records OpenSSL still holds.  Byte-exact or not
# at all.
BULK_ROWS=${BULK_ROWS:-400000}		# about 40 MB each way
BULK_TIMEOUT=${BULK_TIMEOUT:-120}	# a stalled relay fails, not hangs

# tls_psql PORT ARGS...: psql through the gate over verified TLS.
tls_psql() {
	local port=$1
	shift
	timeout "$BULK_TIMEOUT" "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"$(conninfo "$port" verify-full)" "$@"
}

# direct_psql ARGS...: psql in plaintext straight to PostgreSQL.
direct_psql() {
	"$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres sslmode=disable" "$@"
}

same_md5() {		# same_md5 FILE_A FILE_B
	[ -s "$1" ] && [ "$(md5sum <"$1")" = "$(md5sum <"$2")" ]
}

test_bulk() {
	local port=${PORT[ssl_on_require_on]} src=$WORK/bulk-in.tsv
	local out=$WORK/bulk-out.tsv direct=$WORK/bulk-direct.tsv
	local script=$WORK/pipeline.sql i

	awk -v n="$BULK_ROWS" 'BEGIN { for (i = 1; i <= n; i++)
		printf "%d\t%s%d\n", i, "row-of-bulk-data-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789-ABCDEFGHIJKLMNOPQRSTUVWX-", i }' >"$src"
	direct_psql -c "CREATE TABLE bulk (n int, line text)" >/dev/null
	check "a $(($(stat -c %s "$src") / 1048576)) MB COPY FROM STDIN over TLS is stored byte for byte" \
		bulk_in_matches "$port" "$src"
	check "the same table read back by COPY TO STDOUT over TLS matches the file" \
		bulk_out_matches "$port" "$src" "$out"
	direct_psql -c "COPY (SELECT n, line FROM bulk ORDER BY n) TO STDOUT" >"$direct"
	check "COPY TO STDOUT through the gate equals the same COPY straight from PostgreSQL" \
		same_md5 "$out" "$direct"

	{
		echo '\startpipeline'
		for ((i = 1; i <= 500; i++)); do
			echo "SELECT $i AS v$i, repeat('p', 200);"
		done
		echo '\endpipeline'
	} >"$script"
	check "pgbench pipelines of 500 queries over TLS all complete (records arrive many per read)" \
		pipelined_ok "$port" "$script"
	check "340 queries sent as 340 TLS records in one send() are all answered" \
		"$RAWPROBE" --timeout 20 tls-burst 127.0.0.1 "$port"
	check "a client's TLS 1.3 KeyUpdates (asking for the gate's) keep the session going" \
		"$RAWPROBE" --timeout 10 tls-keyupdate 127.0.0.1 "$port"
	check "a KeyUpdate sent while the gate cannot write to the client loses no byte of a 20 MB COPY" \
		"$RAWPROBE" --timeout 30 tls-keyupdate-full 127.0.0.1 "$port"
	direct_psql -c "DROP TABLE bulk" >/dev/null
	rm -f "$src" "$out" "$direct"
}

bulk_in_matches() {	# bulk_in_matches PORT FILE
	local want got
	tls_psql "$1" -c "\\copy bulk FROM '$2'" || return 1
	want=$(md5sum <"$2" | cut -d' ' -f1)
	got=$(direct_psql -c "SELECT md5(string_agg(n || E'\\t' || line || E'\\n', '' ORDER BY n)) FROM bulk")
	echo "md5 of the file $want, of the table $got"
	[ "$want" = "$got" ]
}

bulk_out_matches() {	# bulk_out_matches PORT FILE OUT
	tls_psql "$1" -c "\\copy (SELECT n, line FROM bulk ORDER BY n) TO '$3'" || return 1
	same_md5 "$2" "$3"
}

pipelined_ok() {	# pipelined_ok PORT SCRIPT
	local out
	out=$(PGSSLMODE=verify-full PGSSLROOTCERT=$CERTS/root.crt \
		timeout "$BULK_TIMEOUT" "$PG_BINDIR/pgbench" -n -M extended -f "$2" -t 20 -c 2 \
		-h localhost -p "$1" -U postgres postgres 2>&1) || { echo "$out"; return 1; }
	echo "$out" | grep -E "actually processed|failed"
	echo "$out" | grep -q "number of transactions actually processed: 40/40"
}

test_backend_down() {
	local dead_port
	dead_port=$(free_port)
	start_gate no_backend on off "$CERTS/server-chain.crt" "$CERTS/server.key" \
		-c "backend_port=$dead_port" || return 0
	check "with the backend down the client is told it could not connect to the backend" \
		"$PQPROBE" --expect refused \
		--error-contains "could not connect to backend 127.0.0.1:$dead_port" \
		"$(conninfo "${PORT[no_backend]}" require)"
	gate_stop no_backend
}

# ---- start-up refusals ---------------------------------------------------------

test_startup_refusals() {
	local loose=$WORK/loose.key
	cp "$CERTS/server.key" "$loose"
	chmod 0644 "$loose"
	expect_start_failure "a key file readable by others (0644) stops start-up, naming the file" \
		"$loose" -c ssl=on -c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$loose"
	expect_start_failure "a key that does not belong to the certificate stops start-up" \
		"does not match|do not match|mismatch" -c ssl=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" -c "ssl_key_file=$CERTS/server-ec.key"
	expect_start_failure "an unknown -c setting stops start-up, naming it" \
		"no_such_setting" -c ssl=off -c no_such_setting=1
	if grep -Eiq "warning.*require_ssl" "$(gate_log ssl_off_require_on)"; then
		ok "ssl=off with require_ssl=on starts with a warning about require_ssl"
	else
		fail "ssl=off with require_ssl=on starts with a warning about require_ssl" \
			"$(gate_log ssl_off_require_on)"
	fi
}

stop_matrix_gates() {
	local pair
	for pair in $SERVER_SETTINGS; do
		gate_stop "$(gate_name "${pair%,*}" "${pair#*,}")"
	done
}

main() {
	needs pqprobe rawprobe
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	note "PostgreSQL on 127.0.0.1:$PG_PORT, scratch in $WORK"

	start_matrix_gates
	test_matrix
	test_logins
	test_refusal_wording
	test_untrusted_roots
	test_chain_sent_whole
	test_wrong_host
	test_ecdsa
	test_injection
	test_cancel
	test_queries
	test_bulk
	test_backend_down
	test_startup_refusals
	stop_matrix_gates
	print_matrix
	finish
}

main "$@"
