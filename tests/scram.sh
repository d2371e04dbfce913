#!/bin/bash
# scram.sh: SCRAM-SHA-256 logins through the gate when the backend's leg is
# TLS, where PostgreSQL offers SCRAM-SHA-256-PLUS (channel binding,
# tls-server-end-point of RFC 5929).  Prints TAP-ish lines; exits 0 when
# every test passed, 77 when a prerequisite is missing (a failure instead
# when CI=true), 99 when the setup itself broke, 1 otherwise.
#
# Run by hand after make: bash tests/scram.sh
# (VERBOSE=1 shows every probe's output, KEEP_TMP=1 keeps the logs.)
#
# One PostgreSQL 15 with ssl=on serving server-chain.crt, a role alice with
# a SCRAM password, and for TCP nothing but
#
#   hostssl all alice 127.0.0.1/32 scram-sha-256
#   host    all alice 127.0.0.1/32 scram-sha-256
#
# Three gates in front of it (ssl=on, require_ssl=off): backend_sslmode =
# disable; require with the backend's own certificate and key; require with
# server-ec-chain.crt, another certificate.  libpq clients try each with
# sslmode disable/require x channel_binding disable/prefer/require;
# tests/rawprobe looks at the AuthenticationSASL a plaintext client gets,
# and sends a SASLInitialResponse for SCRAM-SHA-256-PLUS one byte per TLS
# record; the refusals are counted in the metrics; pgsslgate --check
# compares the certificates.
# shellcheck disable=SC2317 # (the helpers run through check)
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

ROLE=alice
PASSWORD=wonderland
declare -A PORT=()		# gate name -> its port
METRICS_PORT=			# gate diff's metrics_listen
JDBC_JAR=${JDBC_JAR:-/usr/share/java/postgresql.jar}

# What the backend says about its own leg: t when it is TLS.
SSL_QUERY="SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

# libpq 15's words for what it refuses by itself.  (Without the gate's
# help a plaintext client got "server offered SCRAM-SHA-256-PLUS
# authentication over a non-SSL connection" from every TLS backend.)
LIBPQ_CB_NO_SSL="channel binding required, but SSL not in use"
LIBPQ_CB_NOT_OFFERED="channel binding is required, but server did not offer an authentication method that supports channel binding"
# The gate's, for a client that binds through two different certificates.
GATE_REFUSAL="08P01: SCRAM channel binding cannot pass through this gate"

# ---- the PostgreSQL with ssl=on and SCRAM ---------------------------------

# Keys must belong to the PostgreSQL user, mode 0600.
pg_certs() {
	local dir=$WORK/pgcerts
	mkdir -p "$dir"
	cp "$CERTS/server-chain.crt" "$dir/server.crt"
	cp "$CERTS/server.key" "$dir/server.key"
	chmod 0600 "$dir/server.key"
	if [ "$(id -u)" -eq 0 ]; then
		chown -R postgres: "$dir"
	fi
}

scram_pg_start() {
	pg_certs
	pg_start "ssl = on" "ssl_cert_file = '$WORK/pgcerts/server.crt'" \
		"ssl_key_file = '$WORK/pgcerts/server.key'" \
		"password_encryption = 'scram-sha-256'" "log_connections = on"
	"$PQPROBE" --query "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'" \
		"host=$PG_DIR port=$PG_PORT user=postgres dbname=postgres" \
		>"$WORK/role.log" 2>&1 || {
		show "$WORK/role.log"
		die "could not create the role $ROLE"
	}
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		hostssl all $ROLE 127.0.0.1/32 scram-sha-256
		host all $ROLE 127.0.0.1/32 scram-sha-256
	EOF
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >"$WORK/pg_ctl.log" 2>&1 || {
		show "$WORK/pg_ctl.log"
		die "pg_ctl reload failed"
	}
	# Reloaded once trust no longer lets alice in without her password.
	for _ in $(seq 1 50); do
		if "$PQPROBE" --expect refused "$(conninfo "$PG_PORT" disable user=$ROLE password=wrong)" \
			>/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	die "pg_hba.conf with scram-sha-256 did not take effect"
}

# SHA-256 of a certificate file's first certificate, colon hex.
fingerprint() {
	openssl x509 -noout -fingerprint -sha256 -in "$1" | sed 's/^[^=]*=//'
}

# ---- gates and clients ----------------------------------------------------

# alice's conninfo for gate NAME: SSLMODE, CHANNEL_BINDING, MORE...
alice() {
	local name=$1 mode=$2 cb=$3
	shift 3
	echo "host=localhost hostaddr=127.0.0.1 port=${PORT[$name]} user=$ROLE" \
		"password=$PASSWORD dbname=postgres sslmode=$mode" \
		"sslrootcert=$CERTS/root.crt channel_binding=$cb $*"
}

start_gates() {
	tls_gate_start plainbe off "$PG_PORT" -c backend_sslmode=disable || true
	tls_gate_start same off "$PG_PORT" -c backend_sslmode=require || true
	METRICS_PORT=$(free_port)
	tls_gate_start diff off "$PG_PORT" -c backend_sslmode=require \
		-c "ssl_cert_file=$CERTS/server-ec-chain.crt" \
		-c "ssl_key_file=$CERTS/server-ec.key" \
		-c "metrics_listen=127.0.0.1:$METRICS_PORT" || true
}

# The value of refused_total{reason="channel_binding"} on gate diff.
channel_binding_refusals() {
	(
		exec 3<>"/dev/tcp/127.0.0.1/$METRICS_PORT" || exit 1
		printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
		timeout 5 cat <&3
	) | tr -d '\r' | awk '$1 == "pgsslgate_refused_total{reason=\"channel_binding\"}" { print $2 }'
}

# Every refusal logged is counted, once.
metric_matches_log() {
	local logged counted
	logged=$(log_match "$(gate_log diff)" "SCRAM channel binding cannot pass" | grep -c .)
	counted=$(channel_binding_refusals)
	echo "logged $logged, counted ${counted:-none}"
	[ "$logged" -ge 1 ] && [ "$logged" = "$counted" ]
}

running() {
	[ -n "${GATE_PID[$1]:-}" ]
}

# expect_cell GATE SSLMODE CHANNEL_BINDING OUTCOME: OUTCOME is "ssl=0" or
# "ssl=1" (connected, and the backend's leg is TLS unless GATE is plainbe),
# or "refused:TEXT" (the error contains TEXT).
expect_cell() {
	local gate=$1 mode=$2 cb=$3 want=$4 backend_tls=t
	[ "$gate" != plainbe ] || backend_tls=f
	case $want in
	ssl=[01])
		check "gate $gate, sslmode=$mode channel_binding=$cb: connected with $want, backend leg ssl=$backend_tls" \
			"$PQPROBE" --expect connected --ssl "${want#ssl=}" --query "$SSL_QUERY" \
			--expect-value "$backend_tls" "$(alice "$gate" "$mode" "$cb")"
		;;
	refused:*)
		check "gate $gate, sslmode=$mode channel_binding=$cb: refused with \"${want#refused:}\"" \
			"$PQPROBE" --verbose-errors --expect refused --error-contains "${want#refused:}" \
			"$(alice "$gate" "$mode" "$cb")"
		;;
	esac
}

# The whole table, as README.md shows it.
test_matrix() {
	local gate
	for gate in plainbe same diff; do
		running "$gate" || continue
		expect_cell "$gate" disable disable ssl=0
		expect_cell "$gate" disable prefer ssl=0
		expect_cell "$gate" disable require "refused:$LIBPQ_CB_NO_SSL"
		expect_cell "$gate" require disable ssl=1
	done
	if running plainbe; then
		expect_cell plainbe require prefer ssl=1
		expect_cell plainbe require require "refused:$LIBPQ_CB_NOT_OFFERED"
	fi
	if running same; then
		expect_cell same require prefer ssl=1
		expect_cell same require require ssl=1
	fi
	if running diff; then
		expect_cell diff require prefer "refused:$GATE_REFUSAL"
		expect_cell diff require require "refused:$GATE_REFUSAL"
	fi
}

# What a client sees and what the log says when the gate refuses.
test_refusal() {
	local gate_fp backend_fp
	running diff || return 0
	gate_fp=$(fingerprint "$CERTS/server-ec.crt")
	backend_fp=$(fingerprint "$CERTS/server.crt")
	check "gate diff: the refusal tells the client what to do (channel_binding=disable, or the backend's certificate and key)" \
		"$PQPROBE" --expect refused \
		--error-contains "Connect with channel_binding=disable, or give the gate the backend's certificate and key" \
		"$(alice diff require prefer)"
	check "gate diff: one log line names the refusal, user $ROLE, and both certificates' SHA-256 fingerprints" \
		log_has diff "refused connection from host=127\.0\.0\.1 .*user=$ROLE .*SCRAM channel binding cannot pass through this gate" \
		"gate's certificate \(SHA-256 $gate_fp\)" "checks against its own \(SHA-256 $backend_fp\)"
	check "gate diff: the backend never saw a channel binding check fail" \
		bash -c "! grep -q 'channel binding check failed' '$PG_DIR/postgres.log'"
	# libpq's sslmode=prefer retries without TLS after an ErrorResponse in
	# authentication, and require_ssl=off lets that through.
	expect_cell diff prefer prefer ssl=0
}

# The messages themselves, without libpq: rawprobe reads and writes them.
test_wire() {
	if running same; then
		check "gate same, plaintext: the AuthenticationSASL that arrives is well formed and offers SCRAM-SHA-256 only" \
			env RAWPROBE_USER=$ROLE "$RAWPROBE" scram-offer 127.0.0.1 "${PORT[same]}"
	fi
	if running plainbe; then
		check "gate plainbe: over its plaintext leg the backend offers no SCRAM-SHA-256-PLUS to begin with" \
			env RAWPROBE_USER=$ROLE "$RAWPROBE" scram-offer 127.0.0.1 "${PORT[plainbe]}"
	fi
	if running diff; then
		check "gate diff: a SASLInitialResponse for SCRAM-SHA-256-PLUS sent one byte per TLS record is held until whole, then refused with 08P01" \
			env RAWPROBE_USER=$ROLE "$RAWPROBE" tls-scram-plus 127.0.0.1 "${PORT[diff]}"
	fi
}

test_metrics() {
	running diff || return 0
	check "gate diff: pgsslgate_refused_total{reason=\"channel_binding\"} counts each refusal in its log" \
		metric_matches_log
}

# asyncpg: connect to gate NAME with ssl=MODE; prints the backend leg's ssl.
asyncpg_probe() {
	/usr/bin/python3 - "${PORT[$1]}" "$2" "$ROLE" "$PASSWORD" <<-'EOF'
		import asyncio, sys
		import asyncpg

		async def main(port, mode, user, password):
		    conn = await asyncpg.connect(host="127.0.0.1", port=int(port), user=user,
		                                 password=password, database="postgres",
		                                 ssl=mode, timeout=10)
		    ssl = await conn.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
		    await conn.close()
		    print(f"connected backend_ssl={ssl}")
		    return 0 if ssl else 1

		sys.exit(asyncio.run(main(*sys.argv[1:])))
	EOF
}

# pgjdbc: the same, run from source (java 11 and later need no javac).
JDBC_PROBE=
jdbc_probe() {
	if [ -z "$JDBC_PROBE" ]; then
		JDBC_PROBE=$WORK/Probe.java
		cat >"$JDBC_PROBE" <<-'EOF'
			import java.sql.*;

			public class Probe {
			    public static void main(String[] a) throws Exception {
			        try (Connection c = DriverManager.getConnection(a[0], a[1], a[2]);
			             ResultSet r = c.createStatement().executeQuery(
			                 "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
			            r.next();
			            System.out.println("connected backend_ssl=" + r.getBoolean(1));
			            System.exit(r.getBoolean(1) ? 0 : 1);
			        }
			    }
			}
		EOF
	fi
	java -cp "$JDBC_JAR" "$JDBC_PROBE" \
		"jdbc:postgresql://127.0.0.1:${PORT[$1]}/postgres?sslmode=$2&connectTimeout=10" \
		"$ROLE" "$PASSWORD"
}

# Drivers that do not bind (asyncpg 0.27, pgjdbc 42.5) take SCRAM-SHA-256
# with gs2 flag 'n' wherever PLUS is offered or not: they log in through
# every gate, with or without TLS.
test_drivers() {
	local gate mode
	for gate in same diff; do
		running "$gate" || continue
		for mode in disable require; do
			check "gate $gate: asyncpg with ssl=$mode logs in with SCRAM, the backend leg over TLS" \
				asyncpg_probe "$gate" "$mode"
			check "gate $gate: pgjdbc with sslmode=$mode logs in with SCRAM, the backend leg over TLS" \
				jdbc_probe "$gate" "$mode"
		done
	done
}

# The relay's watch of the authentication changes nothing else.
test_unchanged() {
	if running same; then
		check "gate same, sslmode=disable: a wrong password is still refused by the backend (28P01)" \
			"$PQPROBE" --verbose-errors --expect refused \
			--error-contains "28P01: password authentication failed for user \"$ROLE\"" \
			"$(alice same disable prefer password=wrong)"
		check "gate same, sslmode=disable: a 100000-byte value comes back after the stripped login" \
			"$PQPROBE" --expect connected --ssl 0 --query "SELECT repeat('x', 100000)" \
			--expect-length 100000 "$(alice same disable prefer)"
	fi
	if running diff; then
		check "gate diff, channel_binding=disable: a wrong password is still refused by the backend (28P01)" \
			"$PQPROBE" --verbose-errors --expect refused \
			--error-contains "28P01: password authentication failed for user \"$ROLE\"" \
			"$(alice diff require disable password=wrong)"
	fi
}

# --check: the certificate the backend presents against the gate's.
test_check() {
	local out=$WORK/check-report.out gate_fp backend_fp rc
	local -a base=(-c listen_addresses=127.0.0.1 -c "port=$PG_PORT"
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT" -c ssl=on
		-c backend_sslmode=require)
	gate_fp=$(fingerprint "$CERTS/server-ec.crt")
	backend_fp=$(fingerprint "$CERTS/server.crt")

	rc=0
	# shellcheck disable=SC2153 # GATE_BIN is lib.sh's
	"$GATE_BIN" --check "${base[@]}" -c "ssl_cert_file=$CERTS/server-ec-chain.crt" \
		-c "ssl_key_file=$CERTS/server-ec.key" >"$out" 2>&1 || rc=$?
	check "--check, another certificate than the backend's: exit 1, a WARNING with both fingerprints and what to do" \
		bash -c "cat '$out'; [ $rc -eq 1 ] &&
			grep -E '^WARNING:  backend 127\.0\.0\.1:$PG_PORT presents a certificate \(SHA-256 $backend_fp\) other than the gate.s ssl_cert_file \(SHA-256 $gate_fp\).*channel_binding=disable' '$out' &&
			[ \"\$(tail -n 1 '$out')\" = 'pgsslgate --check: 1 problem found' ]"

	rc=0
	"$GATE_BIN" --check "${base[@]}" -c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" >"$out" 2>&1 || rc=$?
	check "--check, the backend's own certificate and key: exit 0, says channel binding holds end to end" \
		bash -c "cat '$out'; [ $rc -eq 0 ] &&
			grep -E 'presents the gate.s own certificate \(SHA-256 $backend_fp\): SCRAM channel binding holds end to end' '$out'"
}

main() {
	needs pqprobe rawprobe
	/usr/bin/python3 -c 'import asyncpg' 2>/dev/null ||
		missing "asyncpg for /usr/bin/python3 (Debian package python3-asyncpg)"
	[ -r "$JDBC_JAR" ] || missing "$JDBC_JAR (Debian package libpostgresql-jdbc-java)"
	command -v java >/dev/null 2>&1 || missing "java (Debian package default-jdk-headless)"
	setup_work
	make_certs
	scram_pg_start
	note "PostgreSQL ssl=on, scram-sha-256 for $ROLE, on 127.0.0.1:$PG_PORT; scratch in $WORK"

	start_gates
	test_matrix
	test_refusal
	test_wire
	test_metrics
	test_drivers
	test_unchanged
	test_check
	for name in plainbe same diff; do
		if running "$name"; then gate_stop "$name"; fi
	done
	finish
}

main "$@"
