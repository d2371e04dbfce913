# shellcheck shell=bash disable=SC2034
# (SC2034: several variables here are for the scripts that source this file.)
#
# lib.sh: helpers shared by integration.sh and demo.sh.  Source it from bash.
#
# Provides: TAP-ish results (ok, fail, check, finish), prerequisites (needs),
# a scratch directory removed on exit (KEEP_TMP=1 keeps it), a throwaway
# PostgreSQL 15 (pg_start, pg_stop) and pgsslgate instances (gate_start,
# gate_stop, gate_try), and what several scripts share: TLS gates
# (tls_gate_start), start-up refusals (expect_start_failure), gate logs
# (log_has, log_count, log_match), the sslmode matrix (gate_name,
# sslmode_outcome, probe_expectation, observed_outcome) and small helpers
# (since, num_between, fd_count, rss_kb).
#
# The Makefile exports top_srcdir and top_builddir as absolute paths; run by
# hand, both default to the checkout this file is in.

if [ -z "${BASH_VERSION:-}" ]; then
	echo "lib.sh must be sourced from bash" >&2
	exit 99
fi

top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}

PG_BINDIR=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
GATE_BIN=$top_builddir/src/pgsslgate
PQPROBE=$top_builddir/tests/pqprobe
RAWPROBE=$top_builddir/tests/rawprobe

READY_TEXT="ready to accept connections"
SANITIZER_TEXT="AddressSanitizer|LeakSanitizer|runtime error"
GATE_READY_TIMEOUT=${GATE_READY_TIMEOUT:-10}

WORK=
CERTS=
PG_DIR=
PG_PORT=
PG_RUNNING=0
TESTS_RUN=0
TESTS_FAILED=0
declare -A GATE_PID=()
unset REFUSAL_ARGS		# expect_start_failure's; a script may set it

# libpq and pg_ctl must see only what the tests give them: drop PGHOST,
# PGSSLMODE, PGDATA and the like (but not this file's own PG_BINDIR).
unset_pg_environment() {
	local var
	for var in $(compgen -e); do
		case $var in
		PG_*) ;;
		PG*) unset "$var" ;;
		esac
	done
}
unset_pg_environment

# ---- messages and results ------------------------------------------------

note() {
	printf '# %s\n' "$*"
}

# Indent a file (or stdin) as TAP comments.
show() {
	sed 's/^/#   /' "$@"
}

# Setup went wrong: not a test result, a hard error (automake's 99).
die() {
	echo "ERROR: $*" >&2
	exit 99
}

ok() {
	TESTS_RUN=$((TESTS_RUN + 1))
	echo "ok $TESTS_RUN - $1"
}

# fail DESCRIPTION [DETAIL-FILE]
fail() {
	TESTS_RUN=$((TESTS_RUN + 1))
	TESTS_FAILED=$((TESTS_FAILED + 1))
	echo "not ok $TESTS_RUN - $1"
	if [ -n "${2:-}" ] && [ -f "$2" ]; then
		show "$2"
	fi
}

# check DESCRIPTION COMMAND...: one test, passing iff COMMAND succeeds.  Its
# output is shown on failure (always with VERBOSE=1) and is left in
# $CHECK_OUT for the caller; CHECK_PASSED says how it went.  Returns 0 either
# way, so that set -e does not end the run at the first failure.
CHECK_OUT=
CHECK_PASSED=
check() {
	local desc=$1
	shift
	CHECK_OUT=$WORK/check.out
	if "$@" >"$CHECK_OUT" 2>&1; then
		CHECK_PASSED=1
		ok "$desc"
		if [ "${VERBOSE:-0}" = 1 ]; then
			show "$CHECK_OUT"
		fi
	else
		CHECK_PASSED=0
		fail "$desc" "$CHECK_OUT"
	fi
}

# Print the plan and the tally; exit 0 only if nothing failed.
finish() {
	echo "1..$TESTS_RUN"
	if [ "$TESTS_FAILED" -eq 0 ]; then
		note "all $TESTS_RUN tests passed"
		exit 0
	fi
	note "$TESTS_FAILED of $TESTS_RUN tests FAILED"
	exit 1
}

# ---- prerequisites -----------------------------------------------------------

# A missing prerequisite skips (automake's 77), but fails under CI=true.
missing() {
	if [ "${CI:-}" = true ]; then
		echo "FAIL: prerequisite missing: $*" >&2
		exit 1
	fi
	echo "SKIP: prerequisite missing: $*"
	exit 77
}

# needs [PROGRAM...]: PostgreSQL 15, openssl, runuser when root, pgsslgate and
# the named test programs (pqprobe, rawprobe) of the build.
needs() {
	local prog bin
	for bin in initdb pg_ctl postgres pg_isready; do
		[ -x "$PG_BINDIR/$bin" ] ||
			missing "$PG_BINDIR/$bin (Debian package postgresql-15)"
	done
	command -v openssl >/dev/null 2>&1 || missing "openssl (Debian package openssl)"
	if [ "$(id -u)" -eq 0 ]; then
		command -v runuser >/dev/null 2>&1 ||
			missing "runuser, to run PostgreSQL as a non-root user (Debian package util-linux)"
		id postgres >/dev/null 2>&1 ||
			missing "a user named postgres, to run PostgreSQL when root"
	fi
	[ -x "$GATE_BIN" ] || die "$GATE_BIN is not built: run make first"
	for prog in "$@"; do
		[ -x "$top_builddir/tests/$prog" ] ||
			die "$top_builddir/tests/$prog is not built: run make check (or make $prog)"
	done
}

# ---- scratch space and cleanup ---------------------------------------------

# Make $WORK, and arrange for everything to be stopped and removed on exit.
setup_work() {
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/pgsslgate-test.XXXXXX")
	# PostgreSQL may run as another user: it must be able to get through.
	chmod 0755 "$WORK"
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

cleanup() {
	local rc=$? name
	trap - EXIT INT TERM
	for name in "${!GATE_PID[@]}"; do
		kill_gate "$name"
	done
	pg_stop quietly
	if [ -n "$WORK" ]; then
		if [ "${KEEP_TMP:-0}" = 1 ]; then
			note "kept $WORK"
		else
			rm -rf "$WORK"
		fi
	fi
	exit "$rc"
}

# make_certs: generate the test PKI into $WORK/certs (or reuse $CERT_DIR).
make_certs() {
	CERTS=${CERT_DIR:-$WORK/certs}
	bash "$top_srcdir/tests/certs.sh" "$CERTS" || die "could not make certificates"
}

free_port() {
	"$PQPROBE" --free-port
}

# ---- PostgreSQL ----------------------------------------------------------------

# Run a PostgreSQL program as a user it accepts (initdb refuses root).
as_pg() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

# Logins over TCP are real ones: every role the tests log in as has the
# password PG_PASSWORD, stored as a SCRAM verifier (password_encryption =
# scram-sha-256), and pg_hba.conf asks for it with scram-sha-256.  Two more
# roles show the older methods: PG_MD5_ROLE (an md5 hash, pg_hba md5) and
# PG_CLEARTEXT_ROLE (pg_hba password: sent in clear, checked against the
# SCRAM verifier).  Trusted: the Unix socket (the tests' own
# administration) and PG_RAW_ROLE, the role of tests/rawprobe, which writes
# the wire protocol by hand to test TLS records and the startup phase, not
# logins (RAWPROBE_USER is exported).  PG_HOST_AUTH=trust before pg_start is
# for a test about something else than logging in.
PG_PASSWORD=${PG_PASSWORD:-gate-test-pw-4711}
PG_MD5_ROLE=md5_user
PG_CLEARTEXT_ROLE=cleartext_user
PG_RAW_ROLE=raw_probe
PG_HOST_AUTH=${PG_HOST_AUTH:-scram-sha-256}

# pg_start [SETTING=VALUE...]: a throwaway cluster on 127.0.0.1:$PG_PORT,
# ssl off, logins as described above; the settings are added to
# postgresql.conf (after the defaults, so they override them).  PGPASSWORD
# is exported for psql, pgbench and pqprobe.
pg_start() {
	local setting
	PG_DIR=$WORK/pg
	PG_PORT=$(free_port)
	mkdir -p "$PG_DIR"
	printf '%s\n' "$PG_PASSWORD" >"$WORK/pg-password"
	if [ "$(id -u)" -eq 0 ]; then
		chown postgres: "$PG_DIR" "$WORK/pg-password"
	fi

	as_pg "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U postgres -A trust \
		--pwfile="$WORK/pg-password" \
		-E UTF8 --locale=C --no-sync >"$WORK/initdb.log" 2>&1 || {
		show "$WORK/initdb.log"
		die "initdb failed"
	}
	{
		echo "listen_addresses = '127.0.0.1'"
		echo "port = $PG_PORT"
		echo "unix_socket_directories = '$PG_DIR'"
		echo "ssl = off"
		echo "fsync = off"
		echo "synchronous_commit = off"
		echo "full_page_writes = off"
		echo "max_connections = 50"
		echo "password_encryption = scram-sha-256"
		for setting in "$@"; do
			echo "$setting"
		done
	} >>"$PG_DIR/data/postgresql.conf"
	# The first matching line decides; "host" covers TLS and plaintext.
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		host all $PG_MD5_ROLE 127.0.0.1/32 md5
		host all $PG_CLEARTEXT_ROLE 127.0.0.1/32 password
		host all $PG_RAW_ROLE 127.0.0.1/32 trust
		host all all 127.0.0.1/32 $PG_HOST_AUTH
	EOF

	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/postgres.log" \
		-w -t 60 start >"$WORK/pg_ctl.log" 2>&1 || {
		show "$WORK/pg_ctl.log" "$PG_DIR/postgres.log"
		die "PostgreSQL did not start"
	}
	PG_RUNNING=1
	pg_wait_ready
	export PGPASSWORD=$PG_PASSWORD RAWPROBE_USER=$PG_RAW_ROLE
	pg_admin "CREATE ROLE $PG_RAW_ROLE LOGIN SUPERUSER;" \
		"SET password_encryption = 'md5';" \
		"CREATE ROLE $PG_MD5_ROLE LOGIN PASSWORD '$PG_PASSWORD';" \
		"RESET password_encryption;" \
		"CREATE ROLE $PG_CLEARTEXT_ROLE LOGIN PASSWORD '$PG_PASSWORD';" ||
		die "could not create the roles $PG_RAW_ROLE, $PG_MD5_ROLE and $PG_CLEARTEXT_ROLE"
}

# pg_admin SQL...: run SQL as postgres over the Unix socket (trusted), quietly
# unless it fails.
pg_admin() {
	local out
	out=$("$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 \
		"host=$PG_DIR port=$PG_PORT user=postgres dbname=postgres" \
		-c "$*" 2>&1) || { printf '%s\n' "$out" | show; return 1; }
	[ -z "$out" ] || printf '%s\n' "$out"
}

# pg_create_roles ROLE...: login roles with the password PG_PASSWORD.
pg_create_roles() {
	local sql="" role
	for role; do
		sql+="CREATE ROLE $role LOGIN PASSWORD '$PG_PASSWORD'; "
	done
	pg_admin "$sql" || die "could not create the roles $*"
}

# pg_start_scram_only ROLE PASSWORD: pg_start, then one login role ROLE
# with PASSWORD, and a pg_hba.conf that asks every TCP login, whatever its
# role, for a scram-sha-256 password (none of the other roles above).
pg_start_scram_only() {
	local role=$1 password=$2
	pg_start
	pg_admin "CREATE ROLE $role LOGIN PASSWORD '$password'" ||
		die "could not create the role $role"
	cat >"$PG_DIR/data/pg_hba.conf" <<-EOF
		local all all trust
		host all all 127.0.0.1/32 scram-sha-256
	EOF
	as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" reload >"$WORK/pg_ctl.log" 2>&1 ||
		die "pg_ctl reload failed"
	sleep 0.3
}

# pid_end PID SECONDS: wait up to SECONDS for a background PID to end;
# its exit status is left in PID_STATUS ("running" when it had to be
# killed).
PID_STATUS=
pid_end() {
	local pid=$1 tries=$(($2 * 50))
	PID_STATUS=running
	while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
		sleep 0.02
		tries=$((tries - 1))
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	else
		PID_STATUS=0
		wait "$pid" || PID_STATUS=$?
	fi
}

pg_wait_ready() {
	for _ in $(seq 1 100); do
		if "$PG_BINDIR/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1; then
			return 0
		fi
		sleep 0.1
	done
	show "$PG_DIR/postgres.log"
	die "PostgreSQL is not ready on port $PG_PORT"
}

# pg_stop [quietly]
pg_stop() {
	[ "$PG_RUNNING" = 1 ] || return 0
	PG_RUNNING=0
	if ! as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop \
		>"$WORK/pg_ctl.log" 2>&1; then
		[ "${1:-}" = quietly ] || show "$WORK/pg_ctl.log"
		as_pg "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m immediate stop \
			>/dev/null 2>&1 || true
	fi
}

# ---- pgsslgate ---------------------------------------------------------------

gate_log() {
	echo "$WORK/$1.log"
}

# Wait for NAME to be ready: returns 0 when ready, 1 when it exited (its
# status in GATE_STATUS), 2 when it is still not ready after the timeout.
GATE_STATUS=
gate_wait_ready() {
	local name=$1 pid=${GATE_PID[$1]} log
	local tries=$((GATE_READY_TIMEOUT * 20))
	log=$(gate_log "$name")
	while [ "$tries" -gt 0 ]; do
		if grep -q "$READY_TEXT" "$log" 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			GATE_STATUS=0
			wait "$pid" || GATE_STATUS=$?
			unset "GATE_PID[$name]"
			return 1
		fi
		sleep 0.05
		tries=$((tries - 1))
	done
	return 2
}

# gate_launch NAME ARGS...: run pgsslgate ARGS in the background, output to
# $WORK/NAME.log.  GATE_WRAPPER, when set, is a command (split on blanks)
# that the gate runs under, e.g. "valgrind --error-exitcode=99": the PID kept
# is then the wrapper's, whose exit status is what gate_stop judges.
gate_launch() {
	local name=$1
	local -a wrapper=()
	shift
	[ -z "${GATE_PID[$name]:-}" ] || die "pgsslgate $name is already running"
	read -r -a wrapper <<<"${GATE_WRAPPER:-}"
	"${wrapper[@]}" "$GATE_BIN" "$@" >"$(gate_log "$name")" 2>&1 &
	GATE_PID[$name]=$!
}

# gate_start NAME ARGS...: start pgsslgate and wait until it is ready.  A
# gate that exits or does not get ready counts as a failed test (showing its
# log) and returns 1.
gate_start() {
	local name=$1 rc=0
	gate_launch "$@"
	gate_wait_ready "$name" || rc=$?
	case $rc in
	0) return 0 ;;
	1) fail "pgsslgate $name starts (it exited with status $GATE_STATUS)" \
		"$(gate_log "$name")" ;;
	*) fail "pgsslgate $name starts (not ready after ${GATE_READY_TIMEOUT} s)" \
		"$(gate_log "$name")"
	   kill_gate "$name" ;;
	esac
	return 1
}

# gate_try NAME ARGS...: for configurations that should not start.  Sets
# GATE_OUTCOME to "exit N", "ready" or "hang"; a gate that got ready or hung
# is stopped again.
GATE_OUTCOME=
gate_try() {
	local name=$1 rc=0
	gate_launch "$@"
	gate_wait_ready "$name" || rc=$?
	case $rc in
	0) GATE_OUTCOME=ready ;;
	1) GATE_OUTCOME="exit $GATE_STATUS" ;;
	*) GATE_OUTCOME=hang ;;
	esac
	[ "$rc" = 1 ] || kill_gate "$name"
}

# Stop NAME without judging it (cleanup, or a gate that misbehaved).
kill_gate() {
	local name=$1 pid=${GATE_PID[$1]:-}
	[ -n "$pid" ] || return 0
	unset "GATE_PID[$name]"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# gate_stop NAME: SIGTERM; passing iff it exits 0 within GATE_STOP_TIMEOUT
# (10 s unless set) and its log holds no sanitizer report.  A failure is a
# failed test; returns 0.
GATE_STOP_TIMEOUT=${GATE_STOP_TIMEOUT:-10}
gate_stop() {
	local name=$1 pid=${GATE_PID[$1]:-} log status=0
	log=$(gate_log "$name")
	if [ -z "$pid" ]; then
		fail "pgsslgate $name exits 0 on SIGTERM (it was not running)" "$log"
		return 0
	fi
	unset "GATE_PID[$name]"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 $((GATE_STOP_TIMEOUT * 20))); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		fail "pgsslgate $name exits 0 on SIGTERM (still running after $GATE_STOP_TIMEOUT s)" "$log"
		return 0
	fi
	wait "$pid" || status=$?
	if [ "$status" -ne 0 ]; then
		fail "pgsslgate $name exits 0 on SIGTERM (status $status)" "$log"
		return 0
	fi
	if grep -Eq "$SANITIZER_TEXT" "$log"; then
		fail "pgsslgate $name exits cleanly (sanitizer report in its log)" "$log"
		return 0
	fi
	ok "pgsslgate $name exits 0 on SIGTERM with no sanitizer report"
}

# conninfo PORT SSLMODE [MORE...]: what the tests connect with, as postgres
# with its password.  hostaddr avoids trying ::1 first; host=localhost is
# what verify-full checks.
conninfo() {
	local port=$1 mode=$2
	shift 2
	echo "host=localhost hostaddr=127.0.0.1 port=$port user=postgres" \
		"password=$PG_PASSWORD dbname=postgres sslmode=$mode" \
		"sslrootcert=$CERTS/root.crt $*"
}

# tls_gate_start NAME REQUIRE_SSL BACKEND_PORT [ARGS...]: a gate with ssl=on
# (server-chain.crt), require_ssl=REQUIRE_SSL and log_connections=on, in front
# of 127.0.0.1:BACKEND_PORT, on a fresh port kept in the caller's PORT[NAME];
# ARGS come last, so they override.  Returns 1 if it did not start (counted
# as a failed test).
tls_gate_start() {
	local name=$1 require=$2 backend_port=$3
	shift 3
	# shellcheck disable=SC2004 # (PORT is the caller's associative array)
	PORT[$name]=$(free_port)
	gate_start "$name" -c listen_addresses=127.0.0.1 -c "port=${PORT[$name]}" \
		-c backend_host=127.0.0.1 -c "backend_port=$backend_port" \
		-c ssl=on -c "require_ssl=$require" -c log_connections=on \
		-c "ssl_cert_file=$CERTS/server-chain.crt" \
		-c "ssl_key_file=$CERTS/server.key" "$@"
}

# expect_start_failure DESCRIPTION TEXT ARGS...: pgsslgate ARGS must exit 1
# with TEXT (an extended regular expression) in its output.  It listens on a
# fresh port; the settings REFUSAL_ARGS (split on blanks) come before ARGS,
# the test PostgreSQL as the backend when REFUSAL_ARGS is unset.
expect_start_failure() {
	local desc=$1 text=$2 log
	local -a base=(-c backend_host=127.0.0.1 -c "backend_port=$PG_PORT")
	shift 2
	if [ -n "${REFUSAL_ARGS+set}" ]; then
		read -r -a base <<<"$REFUSAL_ARGS"
	fi
	log=$(gate_log refusal)
	gate_try refusal -c listen_addresses=127.0.0.1 -c "port=$(free_port)" \
		"${base[@]}" "$@"
	if [ "$GATE_OUTCOME" != "exit 1" ]; then
		fail "$desc (expected exit 1, got: $GATE_OUTCOME)" "$log"
	elif ! grep -Eiq -- "$text" "$log"; then
		fail "$desc (exit 1, but no \"$text\" in its output)" "$log"
	else
		ok "$desc"
		if [ "${VERBOSE:-0}" = 1 ]; then show "$log"; fi
	fi
}

# ---- logs ------------------------------------------------------------------------

# log_match LOG PATTERN...: print the lines of LOG matching every PATTERN
# (extended regular expressions, ignoring case).
log_match() {
	local lines pat
	lines=$(cat "$1")
	shift
	for pat; do
		lines=$(grep -Ei -- "$pat" <<<"$lines") || return 1
	done
	printf '%s\n' "$lines"
}

# log_file_has LOG PATTERN...: some line of LOG matches every PATTERN, and
# those lines are printed.  Waits up to 3 s: a process may log a refusal
# after the client has seen it.  Shows the log if not.
log_file_has() {
	local log=$1 tries=60
	shift
	while ! log_match "$log" "$@" >/dev/null; do
		tries=$((tries - 1))
		if [ "$tries" -le 0 ]; then
			echo "no line of $log matches all of:"
			printf '    %s\n' "$@"
			echo "the log:"
			cat "$log"
			return 1
		fi
		sleep 0.05
	done
	log_match "$log" "$@"
}

# log_file_count LOG N PATTERN...: exactly N lines of LOG match every
# PATTERN.  Shows the log if not.
log_file_count() {
	local log=$1 want=$2 got
	shift 2
	got=$(log_match "$log" "$@" | grep -c . || true)
	if [ "$got" -ne "$want" ]; then
		echo "$got lines (not $want) of $log match all of:"
		printf '    %s\n' "$@"
		echo "the log:"
		cat "$log"
		return 1
	fi
}

# log_has NAME PATTERN...: log_file_has on gate NAME's log.
log_has() {
	local log
	log=$(gate_log "$1")
	shift
	log_file_has "$log" "$@"
}

# log_count NAME N PATTERN...: log_file_count on gate NAME's log.
log_count() {
	local log
	log=$(gate_log "$1")
	shift
	log_file_count "$log" "$@"
}

# ---- the sslmode matrix (integration.sh, valgrind.sh) --------------------------

# gate_name SSL REQUIRE_SSL: the name of the matrix gate with them.
gate_name() {
	echo "ssl_$1_require_$2"
}

# sslmode_outcome SSL REQUIRE_SSL SSLMODE: what a client in SSLMODE gets from
# a gate with SSL and REQUIRE_SSL: TLS, plain or refused.
sslmode_outcome() {
	local ssl=$1 require=$2 mode=$3
	case $ssl,$require,$mode in
	on,on,disable) echo refused ;;
	on,on,*) echo TLS ;;
	on,off,disable | on,off,allow) echo plain ;;
	on,off,*) echo TLS ;;
	off,*,disable | off,*,allow | off,*,prefer) echo plain ;;
	*) echo refused ;;
	esac
}

# probe_expectation OUTCOME: pqprobe's options asserting an outcome.
probe_expectation() {
	case $1 in
	TLS) echo "--expect connected --ssl 1" ;;
	plain) echo "--expect connected --ssl 0" ;;
	refused) echo "--expect refused" ;;
	esac
}

# observed_outcome FILE: what pqprobe's output line in FILE says happened.
observed_outcome() {
	case $(grep -m 1 -E '^(connected|refused)' "$1") in
	"connected ssl=1"*) echo TLS ;;
	"connected ssl=0"*) echo plain ;;
	refused:*) echo refused ;;
	*) echo "?" ;;
	esac
}

# ---- small helpers ---------------------------------------------------------------

# since T0: seconds from $EPOCHREALTIME value T0 to now, as 1.234
since() {
	awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'
}

# num_between X MIN MAX: MIN <= X < MAX, as decimal numbers
num_between() {
	awk -v x="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(x >= lo && x < hi) }'
}

# fd_count PID: entries in /proc/PID/fd.
fd_count() {
	local n
	n=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l) || true
	echo "$n"
}

# rss_kb PID: VmRSS from /proc/PID/status, in kB.
rss_kb() {
	awk '/^VmRSS:/ { print $2; found = 1 } END { if (!found) print 0 }' \
		"/proc/$1/status" 2>/dev/null || echo 0
}
