#!/bin/bash
# backend_tls.sh: TLS between pgsslgate and the backend (backend_sslmode and
# the backend_ssl* settings, cancel requests over TLS) and direct SSL from
# the client (ssl_direct, ALPN).  Prints TAP-ish lines; exits 0 when every
# test passed, 77 when a prerequisite is missing (a failure instead when
# CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/backend_tls.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# Two PostgreSQL 15 clusters: lib.sh's (ssl=off, SCRAM logins), and one
# with ssl=on whose pg_hba.conf has nothing but
#
#   hostssl all all 127.0.0.1/32 cert clientcert=verify-full
#
# for TCP, so that only a client presenting tests/certs.sh's proxy
# certificate (CN=proxy, signed by the intermediate; its ssl_ca_file holds
# the root only) gets in, as the role proxy, over TLS.  The fake backends of
# tests/fakebackend play what a real PostgreSQL cannot (bytes injected after
# 'S', errors without SQLSTATE, a TLS handshake that fails, SNI seen);
# tests/directssl is the client for direct SSL, which libpq 15 lacks.
# shellcheck disable=SC2317 # (the helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

DIRECTSSL=$top_builddir/tests/directssl
FAKEBACKEND=$top_builddir/tests/fakebackend

TLS_ROLE=proxy			# the CN of proxy.crt
TLS_PG_DIR=
TLS_PG_PORT=
TLS_PG_RUNNING=0

declare -A PORT=()		# gate name -> its port
declare -A FAKE_PID=()		# fake backend name -> its pid
declare -A FAKE_PORT=()		# fake backend name -> its port

# ---- the PostgreSQL with ssl=on ----------------------------------------------

# Copy a certificate or key where the PostgreSQL user can read it (keys must
# be owned by it with mode 0600).
tls_pg_install() {
	local src=$1 dst=$TLS_PG_DIR/$2 mode=$3
	cp "$src" "$dst"
	chmod "$mode" "$dst"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$dst"
	fi
}

# tls_pg_serve CERT-CHAIN KEY: the certificate the TLS cluster serves next.
tls_pg_serve() {
	tls_pg_install "$1" backend.crt 0644
	tls_pg_install "$2" backend.key 0600
}

# Modelled on lib.sh's pg_start: a second throwaway cluster, ssl=on with
# server-chain.crt, client certificates checked against root.crt, and TCP
# for certificate holders only.
tls_pg_start() {
	TLS_PG_DIR=$WORK/pgtls
	TLS_PG_PORT=$(free_port)
	mkdir -p "$TLS_PG_DIR"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$TLS_PG_DIR"
	fi

	as_pg "$PG_BINDIR/initdb" -D "$TLS_PG_DIR/data" -U postgres -A trust \
		-E UTF8 --locale=C --no-sync >"$WORK/initdb-tls.log" 2>&1 || {
		show "$WORK/initdb-tls.log"
		die "initdb (ssl=on cluster) failed"
	}
	tls_pg_serve "$CERTS/server-chain.crt" "$CERTS/server.key"
	tls_pg_install "$CERTS/root.crt" root.crt 0644
	cat >>"$TLS_PG_DIR/data/postgresql.conf" <<-EOF
		listen_addresses = '127.0.0.1'
		port = $TLS_PG_PORT
		unix_socket_directories = '$TLS_PG_DIR'
		ssl = on
		ssl_cert_file = '$TLS_PG_DIR/backend.crt'
		ssl_key_file = '$TLS_PG_DIR/backend.key'
		ssl_ca_file = '$TLS_PG_DIR/root.crt'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_connections = 50
		log_connections = on
	EOF
	cat >"$TLS_PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		hostssl all all 127.0.0.1/32 cert clientcert=verify-full
	EOF

	as_pg "$PG_BINDIR/pg_ctl" -D "$TLS_PG_DIR/data" -l "$TLS_PG_DIR/postgres.log" \
		-w -t 60 start >"$WORK/pg_ctl-tls.log" 2>&1 || {
		show "$WORK/pg_ctl-tls.log" "$TLS_PG_DIR/postgres.log"
		die "PostgreSQL (ssl=on) did not start"
	}
	TLS_PG_RUNNING=1
	for _ in $(seq 1 100); do
		if "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$TLS_PG_PORT" -t 1; then
			break
		fi
		sleep 0.1
	done
	"$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$TLS_PG_PORT" -t 1 || {
		show "$TLS_PG_DIR/postgres.log"
		die "PostgreSQL (ssl=on) is not ready on port $TLS_PG_PORT"
	}
	"$PQPROBE" --query "CREATE ROLE $TLS_ROLE LOGIN" \
		"host=$TLS_PG_DIR port=$TLS_PG_PORT user=postgres dbname=postgres" \
		>"$WORK/roles.log" 2>&1 || {
		show "$WORK/roles.log"
		die "could not create the role $TLS_ROLE"
	}
}

tls_pg_stop() {
	[ "$TLS_PG_RUNNING" = 1 ] || return 0
	TLS_PG_RUNNING=0
	if ! as_pg "$PG_BINDIR/pg_ctl" -D "$TLS_PG_DIR/data" -m fast -w -t 30 stop \
		>"$WORK/pg_ctl-tls.log" 2>&1; then
		[ "${1:-}" = quietly ] || show "$WORK/pg_ctl-tls.log"
		as_pg "$PG_BINDIR/pg_ctl" -D "$TLS_PG_DIR/data" -m immediate stop \
			>/dev/null 2>&1 || true
	fi
}

# The subject of the certificate the TLS cluster serves now.
tls_pg_subject() {
	timeout 10 openssl s_client -starttls postgres \
		-connect "127.0.0.1:$TLS_PG_PORT" </dev/null 2>/dev/null |
		openssl x509 -noout -subject 2>/dev/null
}

# tls_pg_swap CERT-CHAIN KEY CN: serve another certificate (pg_ctl reload)
# and wait until new connections get it.
tls_pg_swap() {
	local chain=$1 key=$2 cn=$3
	tls_pg_serve "$chain" "$key"
	as_pg "$PG_BINDIR/pg_ctl" -D "$TLS_PG_DIR/data" reload \
		>"$WORK/pg_ctl-tls.log" 2>&1 || {
		show "$WORK/pg_ctl-tls.log"
		die "pg_ctl reload (ssl=on cluster) failed"
	}
	for _ in $(seq 1 50); do
		if tls_pg_subject | grep -q "CN *= *$cn"; then
			return 0
		fi
		sleep 0.1
	done
	show "$TLS_PG_DIR/postgres.log"
	die "the ssl=on cluster does not serve CN=$cn after a reload"
}

# ---- fake backends ------------------------------------------------------------

fake_log() {
	echo "$WORK/fake-$1.log"
}

# fake_start NAME MODE [OPTIONS...]: tests/fakebackend MODE on a fresh port,
# kept in FAKE_PORT[NAME]; its log is $WORK/fake-NAME.log.
fake_start() {
	local name=$1 mode=$2 log
	shift 2
	log=$(fake_log "$name")
	FAKE_PORT[$name]=$(free_port)
	: >"$log"
	"$FAKEBACKEND" "$@" "$mode" "${FAKE_PORT[$name]}" >"$log" 2>&1 &
	FAKE_PID[$name]=$!
	for _ in $(seq 1 100); do
		if grep -q "^listening on" "$log"; then
			return 0
		fi
		kill -0 "${FAKE_PID[$name]}" 2>/dev/null || break
		sleep 0.05
	done
	show "$log"
	die "fakebackend $mode did not start"
}

fake_stop() {
	local name=$1 pid=${FAKE_PID[$1]:-}
	[ -n "$pid" ] || return 0
	unset "FAKE_PID[$name]"
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# Everything lib.sh's cleanup does not know about, then that cleanup.
cleanup_all() {
	local rc=$? name
	set +e
	for name in "${!FAKE_PID[@]}"; do
		fake_stop "$name"
	done
	tls_pg_stop quietly
	(exit "$rc")
	cleanup
}

# fake_has NAME PATTERN...: some line of fake NAME's log matches every
# PATTERN (it may log a moment after the client saw the end: waits up to 3 s).
fake_has() {
	local log
	log=$(fake_log "$1")
	shift
	log_file_has "$log" "$@"
}

# fake_count NAME N PATTERN...: exactly N lines of its log match.
fake_count() {
	local log
	log=$(fake_log "$1")
	shift
	log_file_count "$log" "$@" || return 1
	cat "$log"
}

# ---- gates ------------------------------------------------------------------------

# start_gate NAME BACKEND_PORT [MORE ARGS...]: a gate (ssl=on with
# server-chain.crt, require_ssl=off, log_connections=on) in front of
# 127.0.0.1:BACKEND_PORT unless MORE ARGS say another backend_host, on a
# fresh port kept in PORT[NAME].  Returns 1 if it did not start (counted as
# a failed test).
start_gate() {
	local name=$1 backend_port=$2
	shift 2
	tls_gate_start "$name" off "$backend_port" "$@"
}

# The settings that get a gate into the ssl=on cluster.
proxy_cert() {
	echo "-c backend_sslcert=$CERTS/proxy-chain.crt -c backend_sslkey=$CERTS/proxy.key"
}

# client PORT USER [SSLMODE [MORE...]]: conninfo for a client of a gate.
client() {
	local port=$1 user=$2 mode=${3:-require}
	shift $(($# < 3 ? $# : 3))
	echo "host=localhost hostaddr=127.0.0.1 port=$port user=$user" \
		"dbname=postgres sslmode=$mode sslrootcert=$CERTS/root.crt $*"
}

# What the backend says about its side of the session: "true /CN=proxy"
# when the proxy came over TLS with its certificate.
SSL_QUERY="SELECT ssl::text || ' ' || coalesce(client_dn, '-') FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

# refused_with PORT USER SQLSTATE TEXT [SSLMODE]: the client is refused, and
# the error (verbose, with its SQLSTATE) contains "SQLSTATE: TEXT".
refused_with() {
	"$PQPROBE" --verbose-errors --expect refused --error-contains "$3: $4" \
		"$(client "$1" "$2" "${5:-require}")"
}

# ---- directssl ------------------------------------------------------------------

# direct CODE [-e PATTERN]... -- ARGS...: directssl ARGS exits CODE, and its
# output matches every PATTERN (extended regular expressions).
direct() {
	local want=$1 rc=0 out pat
	local -a patterns=()
	shift
	while [ "$1" = -e ]; do
		patterns+=("$2")
		shift 2
	done
	[ "$1" = -- ] && shift
	out=$("$DIRECTSSL" --timeout 5 "$@" 2>&1) || rc=$?
	printf '%s\n' "$out"
	if [ "$rc" -ne "$want" ]; then
		echo "directssl exited $rc, not $want"
		return 1
	fi
	for pat in "${patterns[@]}"; do
		if ! grep -Eq -- "$pat" <<<"$out"; then
			echo "no line of the output matches: $pat"
			return 1
		fi
	done
}

# ---- the tests: the ssl=on backend ---------------------------------------------

start_tls_gates() {
	local root=(-c "backend_sslrootcert=$CERTS/root.crt")
	local rogue=(-c "backend_sslrootcert=$CERTS/rogue.crt")
	# shellcheck disable=SC2046 # proxy_cert's settings are words
	{
		start_gate full "$TLS_PG_PORT" -c backend_sslmode=verify-full \
			"${root[@]}" $(proxy_cert) || true
		start_gate full_localhost "$TLS_PG_PORT" -c backend_host=localhost \
			-c backend_sslmode=verify-full "${root[@]}" $(proxy_cert) || true
		start_gate verify_ca "$TLS_PG_PORT" -c backend_host=localhost \
			-c backend_sslmode=verify-ca "${root[@]}" $(proxy_cert) || true
		start_gate full_rogue "$TLS_PG_PORT" -c backend_sslmode=verify-full \
			"${rogue[@]}" $(proxy_cert) || true
		start_gate require_rogue "$TLS_PG_PORT" -c backend_sslmode=require \
			"${rogue[@]}" $(proxy_cert) || true
		start_gate require_noroot "$TLS_PG_PORT" -c backend_sslmode=require \
			$(proxy_cert) || true
		start_gate require_root "$TLS_PG_PORT" -c backend_host=localhost \
			-c backend_sslmode=require "${root[@]}" $(proxy_cert) || true
		start_gate prefer_tls "$TLS_PG_PORT" -c backend_sslmode=prefer \
			$(proxy_cert) || true
		start_gate allow_tls "$TLS_PG_PORT" -c backend_sslmode=allow \
			$(proxy_cert) || true
		start_gate prefer_root "$TLS_PG_PORT" -c backend_sslmode=prefer \
			"${root[@]}" $(proxy_cert) || true
		start_gate prefer_rogue "$TLS_PG_PORT" -c backend_sslmode=prefer \
			"${rogue[@]}" $(proxy_cert) || true
		start_gate allow_rogue "$TLS_PG_PORT" -c backend_sslmode=allow \
			"${rogue[@]}" $(proxy_cert) || true
		start_gate full_nocert "$TLS_PG_PORT" -c backend_sslmode=verify-full \
			"${root[@]}" || true
		start_gate crl_file "$TLS_PG_PORT" -c backend_sslmode=verify-full \
			"${root[@]}" -c "backend_sslcrl=$CERTS/backend-crl-bundle.crl" \
			$(proxy_cert) || true
		start_gate crl_dir "$TLS_PG_PORT" -c backend_sslmode=verify-full \
			"${root[@]}" -c "backend_sslcrldir=$CERTS/backend-crl-dir" \
			$(proxy_cert) || true
		start_gate crl_root_only "$TLS_PG_PORT" -c backend_sslmode=verify-full \
			"${root[@]}" -c "backend_sslcrl=$CERTS/root.crl" $(proxy_cert) || true
		start_gate min_tls13 "$TLS_PG_PORT" -c backend_sslmode=require \
			-c backend_ssl_min_protocol_version=TLSv1.3 $(proxy_cert) || true
	}
}

TLS_GATES="full full_localhost verify_ca full_rogue require_rogue require_noroot
	require_root prefer_tls allow_tls prefer_root prefer_rogue allow_rogue
	full_nocert crl_file crl_dir crl_root_only min_tls13"

running() {
	[ -n "${GATE_PID[$1]:-}" ]
}

test_verify_full() {
	local p
	if running full; then
		p=${PORT[full]}
		check "verify-full with the proxy certificate: a libpq client connects as $TLS_ROLE through a cert-only, hostssl-only PostgreSQL" \
			"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
			--expect-value "$TLS_ROLE" "$(client "$p" "$TLS_ROLE" verify-full)"
		check "verify-full: the backend sees its session over TLS with the proxy certificate (pg_stat_ssl: true /CN=$TLS_ROLE)" \
			"$PQPROBE" --query "$SSL_QUERY" --expect-value "true /CN=$TLS_ROLE" \
			"$(client "$p" "$TLS_ROLE" require)"
		check "verify-full: a plaintext client (sslmode=disable) gets the same TLS session to the backend" \
			"$PQPROBE" --expect connected --ssl 0 --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" "$(client "$p" "$TLS_ROLE" disable)"
		check "verify-full: the session-start line ends with ', backend TLSv1.3 <cipher>'" \
			log_has full "session started: .*user=$TLS_ROLE .*, backend TLSv1\.3 TLS_[A-Z0-9_]+$"
		check "verify-full: proxy-chain.crt's intermediate reaches the backend, whose ssl_ca_file holds the root only (else no login)" \
			grep -q "connection authorized: user=$TLS_ROLE.*SSL enabled" \
			"$TLS_PG_DIR/postgres.log"
	fi
	if running full_localhost; then
		check "verify-full with backend_host=localhost (a host name, checked against DNS:localhost) connects" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[full_localhost]}" "$TLS_ROLE" require)"
	fi
	if running full_nocert; then
		check "verify-full without backend_sslcert: the backend's pg_hba (cert) refuses, and the client hears why" \
			"$PQPROBE" --expect refused --error-contains "connection requires a valid client certificate" \
			"$(client "${PORT[full_nocert]}" "$TLS_ROLE" require)"
	fi
}

test_untrusted_backend() {
	local reason="server certificate verification failed: unable to get local issuer certificate"
	if running full_rogue; then
		check "verify-full with a rogue backend_sslrootcert: the client gets 08006 naming the verification failure" \
			refused_with "${PORT[full_rogue]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: $reason"
		check "verify-full with a rogue backend_sslrootcert: the gate log has the detail" \
			log_has full_rogue "TLS to backend 127\.0\.0\.1:$TLS_PG_PORT failed for host=127\.0\.0\.1 port=[0-9]+: $reason"
	fi
	if running require_rogue; then
		check "require with a rogue backend_sslrootcert verifies like verify-ca (libpq's rule) and refuses with 08006" \
			refused_with "${PORT[require_rogue]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: $reason"
	fi
	if running require_noroot; then
		check "require without backend_sslrootcert connects over TLS without verifying" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[require_noroot]}" "$TLS_ROLE" require)"
	fi
}

test_prefer_allow_tls() {
	if running prefer_tls; then
		check "prefer against the ssl=on backend: TLS, and the client connects" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[prefer_tls]}" "$TLS_ROLE" require)"
		check "prefer against the ssl=on backend: the session-start line says backend TLSv1.3" \
			log_has prefer_tls "session started: .*user=$TLS_ROLE .*, backend TLSv1\.3 "
	fi
	if running allow_tls; then
		check "allow against the hostssl-only backend: the plaintext try is refused, the retry over TLS connects" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[allow_tls]}" "$TLS_ROLE" require)"
		check "allow: the gate logs the retry ('retrying over TLS (backend_sslmode = allow)')" \
			log_has allow_tls "backend 127\.0\.0\.1:$TLS_PG_PORT refused the plaintext session of host=127\.0\.0\.1 port=[0-9]+; retrying over TLS \(backend_sslmode = allow\)"
		check "allow: the session-start line after the retry says backend TLSv1.3" \
			log_has allow_tls "session started: .*user=$TLS_ROLE .*, backend TLSv1\.3 "
		check "allow: the backend saw the plaintext try (no pg_hba.conf entry ... no encryption) before the TLS one" \
			grep -q "no pg_hba.conf entry for host \"127.0.0.1\", user \"$TLS_ROLE\", database \"postgres\", no encryption" \
			"$TLS_PG_DIR/postgres.log"
	fi
}

# libpq verifies the chain whenever a root file is given, whatever sslmode
# says; prefer then falls back to plaintext, allow's TLS retry fails.
test_root_in_any_mode() {
	local reason="server certificate verification failed: unable to get local issuer certificate"
	local hba="no pg_hba.conf entry for host \"127.0.0.1\", user \"$TLS_ROLE\", database \"postgres\", no encryption"
	if running prefer_root; then
		check "prefer with the right backend_sslrootcert: verified TLS, the client connects" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[prefer_root]}" "$TLS_ROLE")"
	fi
	if running prefer_rogue; then
		check "prefer with a rogue backend_sslrootcert: verification fails, the plaintext fallback meets the hostssl-only pg_hba" \
			"$PQPROBE" --expect refused --error-contains "$hba" \
			"$(client "${PORT[prefer_rogue]}" "$TLS_ROLE")"
		check "prefer with a rogue backend_sslrootcert: the gate logs the verification failure and 'trying plaintext'" \
			log_has prefer_rogue "TLS to backend 127\.0\.0\.1:$TLS_PG_PORT failed \($reason.*\); trying plaintext \(backend_sslmode = prefer\)"
	fi
	if running allow_rogue; then
		check "allow with a rogue backend_sslrootcert: the TLS retry fails verification, 08006 naming it" \
			refused_with "${PORT[allow_rogue]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: $reason"
		check "allow with a rogue backend_sslrootcert: the error also quotes the plaintext refusal" \
			"$PQPROBE" --expect refused \
			--error-contains "(the plaintext attempt was refused: \"$hba\")" \
			"$(client "${PORT[allow_rogue]}" "$TLS_ROLE")"
	fi
}

test_cancel_tls() {
	running full || return 0
	check "cancel through a verify-full backend: pg_sleep(30) stops with 57014 within 5 s" \
		"$PQPROBE" --query "SELECT pg_sleep(30)" --cancel-after 500 --timeout 5 \
		"$(client "${PORT[full]}" "$TLS_ROLE" require)"
	check "cancel through a verify-full backend: the gate forwarded it over TLS" \
		log_has full "forwarding cancel request from host=127\.0\.0\.1 port=[0-9]+ to backend 127\.0\.0\.1:$TLS_PG_PORT over TLS$"
}

# The ssl=on cluster now serves wronghost-chain.crt (DNS:wronghost.example).
test_host_mismatch() {
	tls_pg_swap "$CERTS/wronghost-chain.crt" "$CERTS/wronghost.key" wronghost.example
	note "the ssl=on cluster now serves wronghost-chain.crt"
	if running full_localhost; then
		check "verify-full, backend_host=localhost, backend certificate for wronghost.example: 08006 hostname mismatch" \
			refused_with "${PORT[full_localhost]}" "$TLS_ROLE" 08006 \
			"could not connect to backend localhost:$TLS_PG_PORT: server certificate verification failed: hostname mismatch"
		check "verify-full, hostname mismatch: the gate log has the detail" \
			log_has full_localhost "TLS to backend localhost:$TLS_PG_PORT failed .*hostname mismatch"
	fi
	if running full; then
		check "verify-full, backend_host=127.0.0.1, a certificate without that IP address: 08006 IP address mismatch" \
			refused_with "${PORT[full]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: server certificate verification failed: IP address mismatch"
	fi
	if running verify_ca; then
		check "verify-ca, backend_host=localhost, certificate for wronghost.example: connects (no host name check)" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[verify_ca]}" "$TLS_ROLE" require)"
	fi
	if running require_root; then
		check "require with backend_sslrootcert, backend_host=localhost, certificate for wronghost.example: connects (verify-ca's checks, no host name)" \
			"$PQPROBE" --expect connected --query "$SSL_QUERY" \
			--expect-value "true /CN=$TLS_ROLE" \
			"$(client "${PORT[require_root]}" "$TLS_ROLE" require)"
	fi
	tls_pg_swap "$CERTS/server-chain.crt" "$CERTS/server.key" localhost
	note "the ssl=on cluster serves server-chain.crt again"
	if running full_localhost; then
		check "verify-full, backend_host=localhost, after the backend went back to server-chain.crt: connects again" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value "$TLS_ROLE" "$(client "${PORT[full_localhost]}" "$TLS_ROLE" require)"
	fi
}

# backend_sslcrl, backend_sslcrldir: CRL checks on the whole chain, as libpq
# (and PostgreSQL) do them.
test_revocation() {
	local revoked="server certificate verification failed: certificate revoked"
	if running crl_file; then
		check "verify-full with backend_sslcrl (root's and intermediate's CRLs): a backend certificate not revoked connects" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value "$TLS_ROLE" "$(client "${PORT[crl_file]}" "$TLS_ROLE")"
	fi
	if running crl_dir; then
		check "verify-full with backend_sslcrldir: a backend certificate not revoked connects" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value "$TLS_ROLE" "$(client "${PORT[crl_dir]}" "$TLS_ROLE")"
	fi
	if running crl_root_only; then
		check "verify-full with backend_sslcrl holding the root's CRL only: refused, no CRL for the leaf's issuer (whole chain checked)" \
			refused_with "${PORT[crl_root_only]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: server certificate verification failed: unable to get certificate CRL"
	fi
	tls_pg_swap "$CERTS/server-revoked-chain.crt" "$CERTS/server-revoked.key" localhost
	note "the ssl=on cluster now serves server-revoked-chain.crt"
	if running crl_file; then
		check "verify-full with backend_sslcrl, the backend's certificate revoked: 08006 certificate revoked" \
			refused_with "${PORT[crl_file]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: $revoked"
		check "verify-full with backend_sslcrl, revoked: the gate log has the detail" \
			log_has crl_file "TLS to backend 127\.0\.0\.1:$TLS_PG_PORT failed .*certificate revoked"
	fi
	if running crl_dir; then
		check "verify-full with backend_sslcrldir, the backend's certificate revoked: 08006 certificate revoked" \
			refused_with "${PORT[crl_dir]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: $revoked"
	fi
	if running verify_ca; then
		check "verify-ca without a CRL: the revoked backend certificate still connects (the control)" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value "$TLS_ROLE" "$(client "${PORT[verify_ca]}" "$TLS_ROLE")"
	fi
	tls_pg_swap "$CERTS/server-chain.crt" "$CERTS/server.key" localhost
	note "the ssl=on cluster serves server-chain.crt again"
}

# The TLS version the ssl=on cluster ends up with, as openssl s_client sees it.
tls_pg_protocol() {
	timeout 10 openssl s_client -starttls postgres -connect "127.0.0.1:$TLS_PG_PORT" \
		</dev/null 2>/dev/null | sed -n 's/^New, \(TLSv1\.[0-9]\),.*/\1/p'
}

# tls_pg_max_protocol VALUE|DEFAULT EXPECTED: set ssl_max_protocol_version
# and wait until new connections get EXPECTED.
tls_pg_max_protocol() {
	local value=$1 want=$2 sql
	if [ "$value" = DEFAULT ]; then
		sql="ALTER SYSTEM RESET ssl_max_protocol_version"
	else
		sql="ALTER SYSTEM SET ssl_max_protocol_version = '$value'"
	fi
	for sql in "$sql" "SELECT pg_reload_conf()"; do
		"$PQPROBE" --query "$sql" \
			"host=$TLS_PG_DIR port=$TLS_PG_PORT user=postgres dbname=postgres" \
			>"$WORK/alter.log" 2>&1 || {
			show "$WORK/alter.log"
			die "could not run $sql"
		}
	done
	for _ in $(seq 1 50); do
		[ "$(tls_pg_protocol)" = "$want" ] && return 0
		sleep 0.1
	done
	die "the ssl=on cluster does not speak $want after setting ssl_max_protocol_version"
}

test_protocol_version() {
	tls_pg_max_protocol TLSv1.2 TLSv1.2
	note "the ssl=on cluster now has ssl_max_protocol_version = TLSv1.2"
	if running min_tls13; then
		check "backend_ssl_min_protocol_version=TLSv1.3 against a TLSv1.2-only backend: refused with 08006" \
			refused_with "${PORT[min_tls13]}" "$TLS_ROLE" 08006 \
			"could not connect to backend 127.0.0.1:$TLS_PG_PORT: "
		check "backend_ssl_min_protocol_version=TLSv1.3 against TLSv1.2: the gate log names the protocol version" \
			log_has min_tls13 "TLS to backend 127\.0\.0\.1:$TLS_PG_PORT failed .*protocol version"
	fi
	if running require_noroot; then
		check "the default backend_ssl_min_protocol_version (TLSv1.2) connects to a TLSv1.2-only backend" \
			"$PQPROBE" --expect connected --query "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()" \
			--expect-value TLSv1.2 "$(client "${PORT[require_noroot]}" "$TLS_ROLE")"
		check "against the TLSv1.2-only backend the session-start line ends with ', backend TLSv1.2 <cipher>'" \
			log_has require_noroot "session started: .*, backend TLSv1\.2 [A-Z0-9-]+$"
	fi
	tls_pg_max_protocol DEFAULT TLSv1.3
	note "the ssl=on cluster is back to its default ssl_max_protocol_version"
	if running min_tls13; then
		check "backend_ssl_min_protocol_version=TLSv1.3 against a TLSv1.3 backend connects" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value "$TLS_ROLE" "$(client "${PORT[min_tls13]}" "$TLS_ROLE")"
	fi
}

# ---- the tests: the ssl=off backend --------------------------------------------

start_plain_gates() {
	start_gate prefer_plain "$PG_PORT" -c backend_sslmode=prefer || true
	start_gate require_plain "$PG_PORT" -c backend_sslmode=require || true
	start_gate full_plain "$PG_PORT" -c backend_sslmode=verify-full \
		-c "backend_sslrootcert=$CERTS/root.crt" || true
	start_gate allow_plain "$PG_PORT" -c backend_sslmode=allow || true
	start_gate prefer_socket "$PG_PORT" -c "backend_host=$PG_DIR" \
		-c backend_sslmode=prefer || true
}

PLAIN_GATES="prefer_plain require_plain full_plain allow_plain prefer_socket"

test_plain_backend() {
	local dns="the backend does not support SSL, but backend_sslmode requires it"
	if running prefer_plain; then
		check "prefer against the ssl=off backend ('N'): a plaintext session works" \
			"$PQPROBE" --expect connected --ssl 1 --query "SELECT current_user" \
			--expect-value postgres "$(client "${PORT[prefer_plain]}" postgres require)"
		check "prefer against the ssl=off backend: the session-start line ends with ', backend plaintext'" \
			log_has prefer_plain "session started: .*user=postgres .*, backend plaintext$"
		check "prefer against the ssl=off backend: a cancel stops pg_sleep(30) with 57014" \
			"$PQPROBE" --query "SELECT pg_sleep(30)" --cancel-after 500 --timeout 5 \
			"$(client "${PORT[prefer_plain]}" postgres require)"
		check "prefer against the ssl=off backend: that cancel was forwarded in plaintext (not 'over TLS')" \
			log_has prefer_plain "forwarding cancel request from host=127\.0\.0\.1 port=[0-9]+ to backend 127\.0\.0\.1:$PG_PORT$"
	fi
	if running require_plain; then
		check "require against the ssl=off backend: the client gets 08006 '... $dns'" \
			refused_with "${PORT[require_plain]}" postgres 08006 \
			"could not connect to backend 127.0.0.1:$PG_PORT: $dns"
	fi
	if running full_plain; then
		check "verify-full against the ssl=off backend: the client gets 08006 '... $dns'" \
			refused_with "${PORT[full_plain]}" postgres 08006 \
			"could not connect to backend 127.0.0.1:$PG_PORT: $dns"
	fi
	if running allow_plain; then
		check "allow against the trusting ssl=off backend: plaintext session, no retry" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value postgres "$(client "${PORT[allow_plain]}" postgres require)"
		check "allow against the trusting ssl=off backend: no 'retrying over TLS' in the log" \
			log_count allow_plain 0 "retrying over TLS"
		check "allow against the trusting ssl=off backend: the session-start line says backend plaintext" \
			log_has allow_plain "session started: .*, backend plaintext$"
	fi
	if running prefer_socket; then
		check "prefer with a Unix-socket backend_host (no SSL there): a plaintext session" \
			"$PQPROBE" --expect connected --query "SELECT current_user" \
			--expect-value postgres "$(client "${PORT[prefer_socket]}" postgres)"
		check "prefer with a Unix-socket backend_host: the session-start line says backend plaintext" \
			log_has prefer_socket "session started: .*, backend plaintext$"
	fi
}

# ---- the tests: fake backends ---------------------------------------------------

test_injection() {
	local want="received unencrypted data after SSL response" fport
	fake_start inject s-plus-bytes
	fport=${FAKE_PORT[inject]}
	start_gate inject_require "$fport" -c backend_sslmode=require || return 0
	check "require, backend sends 'S' plus plaintext bytes: the client gets 08006 '... $want'" \
		refused_with "${PORT[inject_require]}" postgres 08006 \
		"could not connect to backend 127.0.0.1:$fport: $want"
	check "require, 'S' plus plaintext bytes: the gate logs a WARNING mentioning man-in-the-middle" \
		log_has inject_require "WARNING" "unencrypted data" "man-in-the-middle"
	check "require, 'S' plus plaintext bytes: the gate sent no ClientHello, it closed" \
		fake_has inject "connection 1: then the peer closed the connection without sending anything"
	gate_stop inject_require
	start_gate inject_prefer "$fport" -c backend_sslmode=prefer || return 0
	check "prefer, 'S' plus plaintext bytes: refused with 08006 too (no fallback to plaintext)" \
		refused_with "${PORT[inject_prefer]}" postgres 08006 \
		"could not connect to backend 127.0.0.1:$fport: $want"
	check "prefer, 'S' plus plaintext bytes: no second, plaintext connection reached the backend" \
		fake_count inject 0 "StartupMessage"
	gate_stop inject_prefer
	fake_stop inject
}

test_allow_no_sqlstate() {
	local fport
	fake_start nosqlstate error-no-sqlstate
	fport=${FAKE_PORT[nosqlstate]}
	start_gate allow_fake "$fport" -c backend_sslmode=allow || return 0
	# The retry meets 'N' and fails: what counts is that it happened.
	check "allow, an ErrorResponse without SQLSTATE: the client is refused in the end (the fake has no TLS)" \
		"$PQPROBE" --expect refused --error-contains "could not connect to backend 127.0.0.1:$fport" \
		"$(client "${PORT[allow_fake]}" postgres require)"
	check "allow, an ErrorResponse without SQLSTATE: the first connection was a plaintext StartupMessage" \
		fake_has nosqlstate "connection 1: StartupMessage protocol 3\.0 user=postgres database=postgres"
	check "allow, an ErrorResponse without SQLSTATE: the retry (second connection) starts with an SSLRequest" \
		fake_has nosqlstate "connection 2: SSLRequest$"
	check "allow, an ErrorResponse without SQLSTATE: the client's error quotes the plaintext refusal" \
		"$PQPROBE" --expect refused \
		--error-contains "(the plaintext attempt was refused: \"fakebackend: refused, and no SQLSTATE to say why\")" \
		"$(client "${PORT[allow_fake]}" postgres require)"
	check "allow, an ErrorResponse without SQLSTATE: the gate logs 'retrying over TLS (backend_sslmode = allow)'" \
		log_has allow_fake "retrying over TLS \(backend_sslmode = allow\)"
	gate_stop allow_fake
	fake_stop nosqlstate
}

test_prefer_fallback() {
	local fport
	fake_start hsfail s-then-close
	fport=${FAKE_PORT[hsfail]}
	start_gate prefer_hsfail "$fport" -c backend_sslmode=prefer || return 0
	check "prefer, a TLS handshake that fails: the gate falls back to plaintext (the client gets the fake's plaintext answer)" \
		"$PQPROBE" --expect refused \
		--error-contains "fakebackend: StartupMessage user=postgres database=postgres" \
		"$(client "${PORT[prefer_hsfail]}" postgres require)"
	check "prefer, failed handshake: the fake got a ClientHello on the first connection" \
		fake_has hsfail "connection 1: then the peer sent [0-9]+ bytes, first byte 0x16"
	check "prefer, failed handshake: the second connection was a plaintext StartupMessage" \
		fake_has hsfail "connection 2: StartupMessage protocol 3\.0 user=postgres"
	check "prefer, failed handshake: the gate logs 'trying plaintext (backend_sslmode = prefer)'" \
		log_has prefer_hsfail "TLS to backend 127\.0\.0\.1:$fport failed .*trying plaintext \(backend_sslmode = prefer\)"
	gate_stop prefer_hsfail
	start_gate require_hsfail "$fport" -c backend_sslmode=require || return 0
	check "require, a TLS handshake that fails: the client gets 08006, no plaintext fallback" \
		refused_with "${PORT[require_hsfail]}" postgres 08006 \
		"could not connect to backend 127.0.0.1:$fport"
	check "require, failed handshake: no plaintext StartupMessage reached the backend (only prefer's one)" \
		fake_count hsfail 1 "StartupMessage"
	gate_stop require_hsfail
	fake_stop hsfail
}

# A backend that says 'S' and then never finishes the handshake: the client
# must hear about it when authentication_timeout expires, not hang.
test_stalled_handshake() {
	local fport
	fake_start stall s-then-silence
	fport=${FAKE_PORT[stall]}
	start_gate stall "$fport" -c backend_sslmode=require \
		-c authentication_timeout=1s || return 0
	check "require, a backend that stalls the TLS handshake: the client gets 08006 when authentication_timeout (1 s) expires" \
		"$PQPROBE" --verbose-errors --timeout 5 --expect refused \
		--error-contains "08006: could not connect to backend 127.0.0.1:$fport: timed out after authentication_timeout" \
		"$(client "${PORT[stall]}" postgres require)"
	check "a stalled handshake: the gate then closes its side towards the backend" \
		fake_has stall "connection 1: the peer closed after"
	gate_stop stall
	fake_stop stall
}

# A backend that never ends its side after the client ended its own, and
# says nothing more: the gate passes the end on, lets it be silent for
# half_close_timeout (here 3 s), then closes both sides, telling the log
# why.
LINGER_SECONDS=3

test_deaf_backend() {
	local fport out=$WORK/deaf.out t0 t1 took
	fake_start deaf deaf
	fport=${FAKE_PORT[deaf]}
	start_gate deaf "$fport" -c "half_close_timeout=${LINGER_SECONDS}s" || return 0
	t0=$(date +%s.%N)
	"$RAWPROBE" --timeout $((LINGER_SECONDS + 20)) halfclose 127.0.0.1 \
		"${PORT[deaf]}" >"$out" 2>&1 || true
	t1=$(date +%s.%N)
	took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	note "a client's half-close before a deaf backend: the client saw the end after $took s"
	check "a backend that never ends after the client did, silent: the client sees the end after half_close_timeout (${LINGER_SECONDS} s; took $took s)" \
		num_between "$took" $((LINGER_SECONDS - 1)) $((LINGER_SECONDS + 5))
	check "the client's end of stream reached the backend" \
		fake_has deaf "end of stream from the peer after"
	check "the gate logs why it gave up on the backend" \
		log_has deaf "no end from the backend after the client closed"
	gate_stop deaf
	fake_stop deaf
}

test_sni() {
	local fport
	fake_start tls tls --cert "$CERTS/server-chain.crt" --key "$CERTS/server.key"
	fport=${FAKE_PORT[tls]}
	start_gate sni_name "$fport" -c backend_host=localhost -c backend_sslmode=verify-full \
		-c "backend_sslrootcert=$CERTS/root.crt" || return 0
	check "verify-full against a TLS fake: the StartupMessage travels over TLS (the fake says so)" \
		"$PQPROBE" --expect refused --error-contains "received over TLS" \
		"$(client "${PORT[sni_name]}" postgres require)"
	check "backend_host=localhost: the gate sends SNI localhost" \
		fake_has tls "connection 1: TLS handshake done: .*, SNI localhost,"
	gate_stop sni_name
	start_gate sni_off "$fport" -c backend_host=localhost -c backend_sslmode=require \
		-c backend_sslsni=off || return 0
	"$PQPROBE" --expect refused "$(client "${PORT[sni_off]}" postgres require)" \
		>"$WORK/sni_off.out" 2>&1 || true
	check "backend_sslsni=off: no SNI" \
		fake_has tls "connection 2: TLS handshake done: .*, SNI none,"
	gate_stop sni_off
	start_gate sni_ip "$fport" -c backend_sslmode=require || return 0
	"$PQPROBE" --expect refused "$(client "${PORT[sni_ip]}" postgres require)" \
		>"$WORK/sni_ip.out" 2>&1 || true
	check "backend_host=127.0.0.1: no SNI for an IP address" \
		fake_has tls "connection 3: TLS handshake done: .*, SNI none,"
	gate_stop sni_ip
	fake_stop tls
}

# ---- the tests: direct SSL from the client ---------------------------------------

test_direct_ssl() {
	start_gate direct "$PG_PORT" || return 0
	local p=${PORT[direct]}
	check "direct SSL with ALPN postgresql: TLS at once, then the StartupMessage over TLS reaches ReadyForQuery" \
		direct 0 -e "TLS handshake done: TLSv1\.3 .*, ALPN postgresql$" -e "^ReadyForQuery \(over TLS\)$" \
		-- --alpn postgresql 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL: the session-start line says (direct)" \
		log_has direct "session started: .*user=$PG_RAW_ROLE .*TLSv1\.3 .* \(direct\), backend plaintext$"
	check "direct SSL verifying the gate's certificate (root.crt, host localhost) reaches ReadyForQuery" \
		direct 0 -e "^ReadyForQuery" -- --cafile "$CERTS/root.crt" 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL offering http/1.1 and postgresql: postgresql is chosen" \
		direct 0 -e "ALPN postgresql$" -e "^ReadyForQuery" \
		-- --alpn http/1.1,postgresql 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL without ALPN: the handshake completes, then ErrorResponse 08P01 over TLS, then close" \
		direct 1 -e "TLS handshake done: .*, ALPN none$" \
		-e "^ErrorResponse \(over TLS\):.* C=08P01 .*M=received direct SSL connection request without ALPN protocol negotiation extension" \
		-e "^sqlstate=08P01$" -e "^the server closed" -- --no-alpn 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL offering only http/1.1: the handshake fails with no_application_protocol" \
		direct 2 -e "TLS handshake failed:.*no application protocol" \
		-- --alpn http/1.1 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL offering only http/1.1: the gate logs the handshake failure, naming ALPN and \"postgresql\"" \
		log_has direct "TLS handshake with host=127\.0\.0\.1 port=[0-9]+ failed: .*ALPN.*\"postgresql\""
	check "SSLRequest then TLS offering only http/1.1: the handshake fails with no_application_protocol too" \
		direct 2 -e "answer to SSLRequest: 'S'" -e "TLS handshake failed:.*no application protocol" \
		-- --sslrequest --alpn http/1.1 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "SSLRequest then TLS without ALPN (libpq 15's way) reaches ReadyForQuery" \
		direct 0 -e "ALPN none$" -e "^ReadyForQuery" -- --sslrequest --no-alpn 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "SSLRequest then TLS with ALPN postgresql reaches ReadyForQuery, postgresql selected" \
		direct 0 -e "ALPN postgresql$" -e "^ReadyForQuery" -- --sslrequest 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL, then an SSLRequest over TLS: the gate closes the connection" \
		direct 0 -e "closed, as it should be" -- --then-sslrequest 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "direct SSL, then a GSSENCRequest over TLS: the gate closes the connection" \
		direct 0 -e "closed, as it should be" -- --then-gssencrequest 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "SSLRequest and TLS, then a second SSLRequest over TLS: the gate closes the connection" \
		direct 0 -e "closed, as it should be" -- --sslrequest --then-sslrequest 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "SSLRequest and TLS, then a GSSENCRequest over TLS: the gate closes the connection" \
		direct 0 -e "closed, as it should be" -- --sslrequest --then-gssencrequest 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "openssl s_client -alpn postgresql straight at the gate shows 'ALPN protocol: postgresql'" \
		s_client_alpn "$p"
	check "after the direct SSL tests the gate still serves a libpq client over TLS" \
		"$PQPROBE" --expect connected --ssl 1 --query "SELECT 1" --expect-value 1 \
		"$(client "$p" postgres verify-full)"
	gate_stop direct
}

s_client_alpn() {
	timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost \
		-alpn postgresql </dev/null >"$WORK/s_client.out" 2>&1 || true
	cat "$WORK/s_client.out"
	grep -q "^ALPN protocol: postgresql$" "$WORK/s_client.out"
}

# ssl_direct=off: a ClientHello is just a bad startup packet.  Passes on a
# plaintext ErrorResponse 08P01 or a plain close; the output says which.
refused_as_startup_packet() {
	local rc=0 out
	out=$("$DIRECTSSL" --timeout 5 "$@" 2>&1) || rc=$?
	printf '%s\n' "$out"
	case $rc in
	1) grep -q "^sqlstate=08P01$" <<<"$out" &&
		grep -q "^ErrorResponse (in plaintext):" <<<"$out" &&
		grep -q "^then the server closed" <<<"$out" ;;
	2 | 3) grep -q "closed" <<<"$out" ;;
	*) echo "directssl exited $rc"; return 1 ;;
	esac
}

test_direct_off() {
	start_gate nodirect "$PG_PORT" -c ssl_direct=off || return 0
	local p=${PORT[nodirect]}
	check "ssl_direct=off: a direct ClientHello is refused as a bad startup packet (plaintext 08P01 or close)" \
		refused_as_startup_packet --alpn postgresql 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "ssl_direct=off: the refusal is 'invalid length of startup packet'" \
		direct 1 -e "M=invalid length of startup packet" -- 127.0.0.1 "$p" "$PG_RAW_ROLE"
	check "ssl_direct=off: SSLRequest then TLS with ALPN postgresql still works" \
		direct 0 -e "^ReadyForQuery" -- --sslrequest 127.0.0.1 "$p" "$PG_RAW_ROLE"
	gate_stop nodirect
}

# ---- the tests: configuration ------------------------------------------------------

# expect_start_failure (lib.sh) without the test PostgreSQL: each test names
# its backend.
# shellcheck disable=SC2034 # (read by lib.sh)
REFUSAL_ARGS="-c ssl=off"

test_config_errors() {
	local tcp=(-c backend_host=127.0.0.1 -c "backend_port=$TLS_PG_PORT")
	local loose=$WORK/loose-proxy.key
	cp "$CERTS/proxy.key" "$loose"
	chmod 0644 "$loose"
	expect_start_failure "backend_sslmode=verify-ca without backend_sslrootcert stops start-up, naming backend_sslrootcert" \
		"backend_sslrootcert" "${tcp[@]}" -c backend_sslmode=verify-ca
	expect_start_failure "backend_sslmode=verify-full without backend_sslrootcert stops start-up, naming backend_sslrootcert" \
		"backend_sslrootcert" "${tcp[@]}" -c backend_sslmode=verify-full
	expect_start_failure "backend_sslcert without backend_sslkey stops start-up, naming backend_sslkey" \
		"backend_sslkey" "${tcp[@]}" -c backend_sslmode=require \
		-c "backend_sslcert=$CERTS/proxy-chain.crt"
	expect_start_failure "backend_sslkey without backend_sslcert stops start-up, naming backend_sslcert" \
		"backend_sslcert" "${tcp[@]}" -c backend_sslmode=require \
		-c "backend_sslkey=$CERTS/proxy.key"
	expect_start_failure "a backend_sslrootcert that does not exist stops start-up, naming the file" \
		"$WORK/no-such-root.crt" "${tcp[@]}" -c backend_sslmode=verify-ca \
		-c "backend_sslrootcert=$WORK/no-such-root.crt"
	expect_start_failure "a backend_sslkey readable by others (0644) stops start-up, naming the file" \
		"$loose" "${tcp[@]}" -c backend_sslmode=require \
		-c "backend_sslcert=$CERTS/proxy-chain.crt" -c "backend_sslkey=$loose"
	expect_start_failure "a backend_sslkey that does not match backend_sslcert stops start-up" \
		"backend_sslkey" "${tcp[@]}" -c backend_sslmode=require \
		-c "backend_sslcert=$CERTS/proxy-chain.crt" -c "backend_sslkey=$CERTS/alice.key"
	expect_start_failure "backend_sslmode=sometimes stops start-up, listing the modes" \
		"verify-full" "${tcp[@]}" -c backend_sslmode=sometimes
	expect_start_failure "backend_ssl_min_protocol_version=TLSv1.1 stops start-up" \
		"backend_ssl_min_protocol_version" "${tcp[@]}" -c backend_sslmode=require \
		-c backend_ssl_min_protocol_version=TLSv1.1
	expect_start_failure "backend_sslmode=require with a Unix-socket backend_host stops start-up" \
		"backend_sslmode" -c "backend_host=$PG_DIR" -c "backend_port=$PG_PORT" \
		-c backend_sslmode=require
}

stop_gates() {
	local name
	for name in "$@"; do
		if running "$name"; then
			gate_stop "$name"
		fi
	done
}

main() {
	needs pqprobe rawprobe directssl fakebackend
	command -v timeout >/dev/null 2>&1 || missing "timeout (Debian package coreutils)"
	setup_work
	trap cleanup_all EXIT
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	tls_pg_start
	note "PostgreSQL ssl=off on 127.0.0.1:$PG_PORT, ssl=on on 127.0.0.1:$TLS_PG_PORT, scratch in $WORK"

	start_tls_gates
	test_verify_full
	test_untrusted_backend
	test_prefer_allow_tls
	test_root_in_any_mode
	test_cancel_tls
	test_host_mismatch
	test_revocation
	test_protocol_version
	# shellcheck disable=SC2086 # the names are words
	stop_gates $TLS_GATES

	start_plain_gates
	test_plain_backend
	# shellcheck disable=SC2086 # the names are words
	stop_gates $PLAIN_GATES

	test_injection
	test_allow_no_sqlstate
	test_prefer_fallback
	test_stalled_handshake
	test_deaf_backend
	test_sni
	test_direct_ssl
	test_direct_off
	test_config_errors
	finish
}

main "$@"
