#!/bin/bash
# demo.sh: see pgsslgate work.  Starts a throwaway PostgreSQL 15 and three
# gates in front of it, connects a real libpq client in every sslmode to
# each, and prints what it got: TLS (version, cipher), plaintext, or refused
# and why.  Then says how to connect with psql yourself.
#
# With a terminal on stdin everything keeps running until Ctrl-C (unless
# DEMO_HOLD=0); otherwise it cleans up and exits once it has printed.
#
# Run as make demo, or by hand after make: bash tests/demo.sh
if [ -z "${BASH_VERSION:-}" ]; then exec bash "$0" "$@"; fi
set -euo pipefail

. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

SSLMODES="disable allow prefer require verify-ca verify-full"
GATES="tls_only tls_optional plaintext"

declare -A PORT=() SSL=() REQUIRE=() PSQL_MODE=()

# define_gate NAME SSL REQUIRE_SSL SSLMODE-TO-SHOW-FOR-PSQL
define_gate() {
	SSL[$1]=$2
	REQUIRE[$1]=$3
	PSQL_MODE[$1]=$4
}

define_gate tls_only on on verify-full
define_gate tls_optional on off verify-full
define_gate plaintext off off disable

start_demo_gate() {
	local name=$1
	local -a args
	PORT[$name]=$(free_port)
	args=(-c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}"
		-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT"
		-c "ssl=${SSL[$name]}" -c "require_ssl=${REQUIRE[$name]}"
		-c log_connections=on)
	if [ "${SSL[$name]}" = on ]; then
		args+=(-c "ssl_cert_file=$CERTS/server-chain.crt"
			-c "ssl_key_file=$CERTS/server.key")
	fi
	gate_start "$name" "${args[@]}" || die "pgsslgate $name did not start"
}

# What one libpq client in SSLMODE got from the gate on PORT, in words.
describe_connection() {
	local port=$1 mode=$2 line protocol cipher
	line=$("$PQPROBE" "$(conninfo "$port" "$mode")" 2>/dev/null |
		grep -m 1 -E '^(connected|refused)' || true)
	case $line in
	"connected ssl=1"*)
		protocol=${line#*protocol=}
		protocol=${protocol%% *}
		cipher=${line#*cipher=}
		echo "TLS        $protocol $cipher"
		;;
	"connected ssl=0"*)
		echo "plaintext"
		;;
	refused:*)
		# Drop libpq's 'connection to server at ... failed: ' lead-in.
		line=${line#refused: }
		line=${line#*failed: }
		echo "refused    $line"
		;;
	*)
		echo "?          (pqprobe printed nothing useful)"
		;;
	esac
}

print_gate_matrix() {
	local name=$1 mode
	echo
	printf 'pgsslgate ssl=%s require_ssl=%s, listening on 127.0.0.1:%s\n' \
		"${SSL[$name]}" "${REQUIRE[$name]}" "${PORT[$name]}"
	printf '  %-12s %s\n' sslmode "what a libpq client got"
	for mode in $SSLMODES; do
		printf '  %-12s %s\n' "$mode" "$(describe_connection "${PORT[$name]}" "$mode")"
	done
}

print_psql_hints() {
	local name
	echo
	echo "Connect yourself (clients trust only $CERTS/root.crt; PostgreSQL"
	echo "asks for a SCRAM password: export PGPASSWORD=$PG_PASSWORD first):"
	for name in $GATES; do
		printf '  # ssl=%s require_ssl=%s\n' "${SSL[$name]}" "${REQUIRE[$name]}"
		if [ "${PSQL_MODE[$name]}" = disable ]; then
			printf '  psql "host=localhost port=%s user=postgres dbname=postgres sslmode=disable"\n' \
				"${PORT[$name]}"
		else
			printf '  psql "host=localhost port=%s user=postgres dbname=postgres sslmode=%s sslrootcert=%s"\n' \
				"${PORT[$name]}" "${PSQL_MODE[$name]}" "$CERTS/root.crt"
		fi
	done
	echo "The gates' logs: $WORK/<name>.log; PostgreSQL listens on 127.0.0.1:$PG_PORT."
}

hold_until_interrupted() {
	echo
	echo "Running until Ctrl-C; then everything is stopped and removed."
	trap 'echo; echo "Stopping."; exit 0' INT
	while :; do
		sleep 1
	done
}

main() {
	local name
	needs pqprobe
	setup_work
	make_certs
	# shellcheck disable=SC2119 # no extra settings
	pg_start
	for name in $GATES; do
		start_demo_gate "$name"
	done

	echo "pgsslgate demo: PostgreSQL 15 on 127.0.0.1:$PG_PORT behind three gates."
	echo "Each line is a real libpq connection (sslrootcert=root.crt, host=localhost)."
	for name in $GATES; do
		print_gate_matrix "$name"
	done
	print_psql_hints

	if [ -t 0 ] && [ "${DEMO_HOLD:-1}" != 0 ]; then
		hold_until_interrupted
	fi
	echo
	echo "(No terminal on stdin, or DEMO_HOLD=0: stopping everything now."
	echo " Run it from a terminal to keep it up; KEEP_TMP=1 keeps the files.)"
}

main "$@"
