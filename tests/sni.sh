#!/bin/bash
# sni.sh: ssl_sni and hosts_file (PostgreSQL 19's pg_hosts.conf, plus our
# backend= option) between real libpq, psycopg and openssl s_client clients
# and two real PostgreSQL 15 clusters that log in with scram-sha-256.
# Prints TAP-ish lines; exits 0 when every test passed, 77 when a
# prerequisite is missing (a failure instead when CI=true), 99 when the
# setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/sni.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# The clients connect with host=NAME hostaddr=127.0.0.1: libpq sends NAME
# as the TLS server name (sslsni=1 is its default) and checks the
# certificate against it, while the connection goes to the loopback.
# shellcheck disable=SC2317 # (functions run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PYTHON=/usr/bin/python3
declare -A PORT=()
PG_A_PORT=
PG_B_PORT=
PG_B_DIR=
HOSTS=

needs pqprobe nblibpq
[ -x "$PYTHON" ] && "$PYTHON" -c 'import psycopg' 2>/dev/null ||
	missing "psycopg 3 for /usr/bin/python3 (Debian package python3-psycopg)"
setup_work
make_certs

# ---- set-up ----------------------------------------------------------------

# leaf NAME CN: NAME.key and NAME-chain.crt for DNS:CN, signed by the test
# intermediate CA (root.crt is what the clients trust).
leaf() {
	local name=$1 cn=$2 dir=$WORK/sni
	mkdir -p "$dir"
	openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$name.key" \
		-subj "/O=pgsslgate tests/CN=$cn" -out "$dir/$name.csr" \
		>>"$WORK/openssl.log" 2>&1
	printf 'subjectAltName = DNS:%s\nextendedKeyUsage = serverAuth\n' "$cn" \
		>"$dir/$name.ext"
	openssl x509 -req -in "$dir/$name.csr" -CA "$CERTS/intermediate.crt" \
		-CAkey "$CERTS/intermediate.key" -CAcreateserial -days 30 \
		-extfile "$dir/$name.ext" -out "$dir/$name.crt" \
		>>"$WORK/openssl.log" 2>&1
	cat "$dir/$name.crt" "$CERTS/intermediate.crt" >"$dir/$name-chain.crt"
	chmod 0600 "$dir/$name.key"
}

# The second cluster: pg_start again under another scratch directory,
# then the first one's variables back.
second_backend() {
	local work=$WORK a_dir=$PG_DIR a_port=$PG_PORT
	WORK=$work/second
	mkdir -p "$WORK"
	chmod 0755 "$WORK"
	pg_start
	PG_B_DIR=$PG_DIR
	PG_B_PORT=$PG_PORT
	WORK=$work
	PG_DIR=$a_dir
	PG_PORT=$a_port
}

stop_second() {
	[ -n "$PG_B_DIR" ] || return 0
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_B_DIR/data" -m immediate stop \
		>/dev/null 2>&1 || true
}
trap 'rc=$?; stop_second; (exit $rc); cleanup' EXIT

for n in a b nosni default other; do
	leaf "$n" "$n.test"
done
pg_start
PG_A_PORT=$PG_PORT
second_backend
note "backend a on port $PG_A_PORT, backend b on port $PG_B_PORT"

# A PostgreSQL 19 file, columns as its pg_hosts.conf.sample names them,
# and our extension on b.test's line.
write_hosts() {
	HOSTS=$WORK/sni/pg_hosts.conf
	cat >"$HOSTS" <<-EOF
		# HOSTNAME  SSL_CERTIFICATE  SSL_KEY  SSL_CA  PASSPHRASE_COMMAND  PASSPHRASE_COMMAND_RELOAD
		a.test      a-chain.crt      a.key
		b.test      b-chain.crt      b.key    ""      backend=127.0.0.1:$PG_B_PORT
		/no_sni/    nosni-chain.crt  nosni.key
	EOF
}

# ---- probes ----------------------------------------------------------------

# subject_for PORT NAME|-: the CN of the certificate the gate presents for
# server name NAME (- for none), as openssl s_client sees it.
s_client() {
	local port=$1 name=$2
	local -a sni=(-servername "$name")
	[ "$name" != - ] || sni=(-noservername)
	timeout 10 openssl s_client -starttls postgres \
		-connect "127.0.0.1:$port" "${sni[@]}" </dev/null 2>&1 || true
}

presents() {
	local out
	out=$(s_client "$1" "$2")
	printf '%s\n' "$out" | grep -E "subject=|alert|error" || true
	printf '%s\n' "$out" | grep -Eq "^subject=.*CN ?= ?$3\$"
}

# The fingerprint of what is presented equals the file's own.
same_fingerprint() {
	local got want
	got=$(s_client "$1" "$2" | openssl x509 -noout -fingerprint -sha256 2>/dev/null)
	want=$(openssl x509 -noout -fingerprint -sha256 -in "$WORK/sni/$3.crt")
	echo "presented: $got"
	echo "file:      $want"
	[ -n "$got" ] && [ "$got" = "$want" ]
}

alerted_unrecognized() {
	local out
	out=$(s_client "$1" "$2")
	printf '%s\n' "$out" | grep -Ei "alert|error" || true
	printf '%s\n' "$out" | grep -qi "unrecognized name"
}

# sni_conninfo PORT NAME [MORE...]: libpq to the loopback, server name NAME,
# verifying the certificate against NAME.
sni_conninfo() {
	local port=$1 name=$2
	shift 2
	echo "host=$name hostaddr=127.0.0.1 port=$port user=postgres" \
		"password=$PG_PASSWORD dbname=postgres sslmode=verify-full" \
		"sslrootcert=$CERTS/root.crt $*"
}

# reaches PORT NAME BACKEND_PORT [MORE...]: a verify-full login with server
# name NAME lands on the cluster listening on BACKEND_PORT.
reaches() {
	local port=$1 name=$2 want=$3
	shift 3
	"$PQPROBE" --expect connected --ssl 1 --query "SHOW port" \
		--expect-value "$want" "$(sni_conninfo "$port" "$name" "$@")"
}

psycopg_port() {
	"$PYTHON" - "$(sni_conninfo "$1" "$2" connect_timeout=10)" <<-'EOF'
		import sys, psycopg
		with psycopg.connect(sys.argv[1]) as conn:
		    print(conn.execute("SHOW port").fetchone()[0],
		          conn.pgconn.ssl_in_use)
	EOF
}

psycopg_reaches() {
	local out
	out=$(psycopg_port "$1" "$2") || { echo "$out"; return 1; }
	echo "$out"
	[ "$out" = "$3 True" ]
}

# A cancel with the client's own PQcancel, which libpq 15 sends in
# plaintext, without a server name: it must reach the session's backend.
nblibpq_cancel() {
	local out
	out=$("$top_builddir/tests/nblibpq" cancel host="$2" hostaddr=127.0.0.1 \
		port="$1" user=postgres password="$PG_PASSWORD" dbname=postgres \
		sslmode=verify-full sslrootcert="$CERTS/root.crt") || true
	echo "$out"
	[ "$out" = "OK cancelled sqlstate=57014" ]
}

psycopg_cancel() {
	local out
	out=$("$top_srcdir/tests/drivers/client-psycopg" cancel host="$2" \
		hostaddr=127.0.0.1 port="$1" user=postgres password="$PG_PASSWORD" \
		dbname=postgres sslmode=verify-full sslrootcert="$CERTS/root.crt") || true
	echo "$out"
	[ "$out" = "OK cancelled sqlstate=57014" ]
}

pg_log_has_cancel() {
	local log=$1 want=$2 got
	got=$(grep -c "canceling statement due to user request" "$log" || true)
	echo "$got cancelled statements in $log (want $want)"
	[ "$got" -eq "$want" ]
}

# ---- tests -----------------------------------------------------------------

write_hosts
METRICS_PORT=$(free_port)
tls_gate_start sni off "$PG_A_PORT" -c ssl_sni=on -c "hosts_file=$HOSTS" \
	-c "metrics_listen=127.0.0.1:$METRICS_PORT" -c file_check_interval=1
P=${PORT[sni]}

check "s_client -servername a.test gets a.test's certificate" presents "$P" a.test a.test
check "s_client -servername b.test gets b.test's certificate" presents "$P" b.test b.test
check "the certificate for b.test is b.crt (SHA-256 fingerprint)" same_fingerprint "$P" b.test b
check "s_client -noservername gets the /no_sni/ entry's certificate" presents "$P" - nosni.test
direct_tls() {
	timeout 10 openssl s_client -alpn postgresql -connect "127.0.0.1:$1" \
		-servername "$2" </dev/null 2>&1 | grep -E "^subject=.*CN ?= ?$2\$"
}
check "direct TLS (PostgreSQL 17, ALPN) with server name b.test gets b.test's certificate" \
	direct_tls "$P" b.test
check "an unknown name (no * entry) gets alert unrecognized_name" alerted_unrecognized "$P" zzz.test
check "the refusal is logged with the name and the cause" \
	log_has sni "TLS handshake .* failed" "zzz.test" "no hosts_file entry"

check "libpq host=a.test (verify-full) reaches backend a" reaches "$P" a.test "$PG_A_PORT"
check "libpq host=b.test (verify-full) reaches backend b, its backend=" reaches "$P" b.test "$PG_B_PORT"
check "libpq sslsni=0 gets the /no_sni/ certificate (verify-full for no-sni is refused)" \
	"$PQPROBE" --expect refused --error-contains "does not match host name" \
	"$(sni_conninfo "$P" a.test sslsni=0)"
check "libpq host=nosni.test sslsni=0 (verify-full) reaches backend a" \
	reaches "$P" nosni.test "$PG_A_PORT" sslsni=0
check "libpq with an unknown name is refused: tlsv1 unrecognized name" \
	"$PQPROBE" --expect refused --error-contains "unrecognized name" \
	"$(sni_conninfo "$P" zzz.test sslmode=require)"
check "psycopg host=a.test reaches backend a over TLS" psycopg_reaches "$P" a.test "$PG_A_PORT"
check "psycopg host=b.test reaches backend b over TLS" psycopg_reaches "$P" b.test "$PG_B_PORT"
check "the session log line names the server name and the backend" \
	log_has sni "session started: .*sni=b.test backend=127.0.0.1:$PG_B_PORT"
check "a session without a server name logs sni=none" \
	log_has sni "session started: .*sni=none backend=127.0.0.1:$PG_A_PORT"

check "libpq PQcancel (plaintext, no SNI) of a query on backend b ends it with 57014" \
	nblibpq_cancel "$P" b.test
check "psycopg's cancel of a query on backend b ends it with 57014" \
	psycopg_cancel "$P" b.test
check "backend b cancelled both statements, backend a none" \
	bash -c "$(declare -f pg_log_has_cancel); pg_log_has_cancel '$PG_B_DIR/postgres.log' 2 && pg_log_has_cancel '$PG_DIR/postgres.log' 0"
check "libpq PQcancel of a query on backend a ends it with 57014" \
	nblibpq_cancel "$P" a.test
check "the cancels were forwarded to the sessions' backends" \
	log_count sni 2 "forwarding cancel request .* to backend 127.0.0.1:$PG_B_PORT"

# metric NAME VALUE: the line "NAME VALUE" is in GET /metrics.
metric() {
	local out
	out=$("$PYTHON" "$top_srcdir/tests/httpprobe.py" get "$METRICS_PORT" /metrics) || return 1
	printf '%s\n' "$out" | grep -E "sni|unrecognized" || true
	printf '%s\n' "$out" | grep -qxF "$1 $2"
}
check "metrics: sessions counted by server name (b.test: 4 sessions: two logins, two cancelled queries)" \
	metric 'pgsslgate_sni_sessions_total{sni="b.test"}' 4
check "metrics: sessions without a server name counted as none" \
	metric 'pgsslgate_sni_sessions_total{sni="none"}' 1
check "metrics: refused names counted as handshake failures unrecognized_name" \
	metric 'pgsslgate_tls_handshake_failures_total{reason="unrecognized_name"}' 2

# A bad file at SIGHUP keeps everything as it was.
cp "$HOSTS" "$WORK/sni/good.conf"
printf 'c.test c.crt\n' >>"$HOSTS"
kill -HUP "${GATE_PID[sni]}"
check "a bad hosts_file at SIGHUP: reload failed, naming file:line and what is allowed" \
	log_has sni "reload failed" "pg_hosts.conf:5: missing SSL_KEY at end of line \(allowed: HOSTNAME"
check "after the failed reload a.test still gets its certificate" presents "$P" a.test a.test
check "after the failed reload b.test still reaches backend b" reaches "$P" b.test "$PG_B_PORT"

# A good one with a * entry: unknown names get the default certificate.
cp "$WORK/sni/good.conf" "$HOSTS"
printf '*  default-chain.crt  default.key\n' >>"$HOSTS"
kill -HUP "${GATE_PID[sni]}"
check "a good hosts_file at SIGHUP is applied" log_has sni "configuration reloaded"
check "after the reload an unknown name gets the * entry's certificate" \
	presents "$P" zzz.test default.test
# An entry's certificate and key replaced in place: the file watcher
# reloads, and b.test is served the new one with no SIGHUP.
new_b_serves() {
	for _ in $(seq 1 100); do
		same_fingerprint "$P" b.test b >/dev/null && break
		sleep 0.1
	done
	same_fingerprint "$P" b.test b
}
old_fp=$(openssl x509 -noout -fingerprint -sha256 -in "$WORK/sni/b.crt")
leaf b b.test
check "b.test's certificate was renewed in place (a new fingerprint)" \
	test "$old_fp" != "$(openssl x509 -noout -fingerprint -sha256 -in "$WORK/sni/b.crt")"
check "the file watcher sees b.test's new certificate and serves it without SIGHUP" new_b_serves
gate_stop sni

# A file written for PostgreSQL 19 as it is: no backend=, so every name
# goes to backend_host:backend_port; also its quoting and comma lists.
cat >"$WORK/sni/pg19.conf" <<-EOF
	# HOSTNAME            SSL_CERTIFICATE  SSL_KEY    SSL_CA
	a.test,"a2.test"      a-chain.crt      a.key      "$CERTS/client-ca.crt"
	b.test                b-chain.crt      b.key
	other.test            other-chain.crt  other.key  "$CERTS/rogue.crt"
	EOF
tls_gate_start pg19 off "$PG_A_PORT" -c ssl_sni=on -c "hosts_file=$WORK/sni/pg19.conf"
check "PostgreSQL 19 file: b.test gets b.test's certificate" presents "${PORT[pg19]}" b.test b.test
check "PostgreSQL 19 file: b.test reaches backend_port (no backend= column)" \
	reaches "${PORT[pg19]}" b.test "$PG_A_PORT"
check "PostgreSQL 19 file: the entry with SSL_CA asks for a client certificate, b.test's does not" \
	bash -c "$(declare -f s_client); s_client ${PORT[pg19]} a.test | grep -q 'Acceptable client certificate CA names' && ! s_client ${PORT[pg19]} b.test | grep -q 'Acceptable client certificate CA names'"
check "PostgreSQL 19 file: alice's client certificate passes a.test's SSL_CA" \
	"$PQPROBE" --expect connected --ssl 1 \
	"$(sni_conninfo "${PORT[pg19]}" a.test sslcert="$CERTS/alice-chain.crt" sslkey="$CERTS/alice.key")"
check "PostgreSQL 19 file: alice's certificate fails other.test's SSL_CA (another CA): verified per entry" \
	"$PQPROBE" --expect refused --error-contains "alert unknown ca" \
	"$(sni_conninfo "${PORT[pg19]}" other.test sslcert="$CERTS/alice-chain.crt" sslkey="$CERTS/alice.key")"
check "PostgreSQL 19 file: the refusal is logged as a client certificate that did not verify" \
	log_has pg19 "TLS handshake .* failed" "certificate"
check "PostgreSQL 19 file: no /no_sni/ and no * entry: a client without a name is refused" \
	alerted_unrecognized "${PORT[pg19]}" -
gate_stop pg19

# A file that does not parse stops the start, naming file:line.
printf 'a.test a-chain.crt a.key ca.crt cmd maybe\n' >"$WORK/sni/bad.conf"
REFUSAL_ARGS="-c backend_port=$PG_A_PORT -c ssl=on -c ssl_cert_file=$CERTS/server-chain.crt -c ssl_key_file=$CERTS/server.key"
expect_start_failure "a bad hosts_file stops the start with file:line" \
	"bad.conf:1: PASSPHRASE_COMMAND_RELOAD \"maybe\" is not a boolean" \
	-c ssl_sni=on -c "hosts_file=$WORK/sni/bad.conf"
expect_start_failure "ssl_sni = on without hosts_file is refused" \
	"ssl_sni = on needs ssl = on and hosts_file" -c ssl_sni=on

finish
