#!/usr/bin/env bash
# CI, last step of .ci/run: build the Debian package from the tracked files
# in a copy (the checkout stays as it is), install it as a user would, and
# check what the package promises: the files and the conffile, the system
# user, a valid unit, an installed configuration that passes --check (with
# Debian's PostgreSQL 15 cluster on 5432 as its backend, and failing by
# name without it), the installed daemon serving TLS to psql as the
# service user, and a purge that removes it.  Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "== deb: $*"; }
die() { echo "FAIL: deb: $*" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
flock /tmp/apt.lock apt-get install -y -qq --no-install-recommends \
    debhelper devscripts dpkg-dev fakeroot >/dev/null

work=$(mktemp -d /tmp/pgsslgate-deb.XXXXXX)
gate_pid=
cluster_started=0
cleanup() {
	[ -z "$gate_pid" ] || kill "$gate_pid" 2>/dev/null || true
	[ "$cluster_started" = 0 ] || pg_ctlcluster 15 main stop || true
	rm -rf "$work"
}
trap cleanup EXIT

say "dpkg-buildpackage -us -uc -b in a copy of the tracked files"
before=$(git status --porcelain)
mkdir "$work/src"
git ls-files -z | tar -c --null -T - | tar -x -C "$work/src"
(cd "$work/src" && dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1 ||
	{ tail -60 "$work/build.log"; die "dpkg-buildpackage failed"; }
[ "$(git status --porcelain)" = "$before" ] ||
	die "building the package changed the checkout"
deb=$(ls "$work"/pgsslgate_*_*.deb)

say "apt-get install ./$(basename "$deb")"
(cd "$work" && apt-get install -y -qq "./$(basename "$deb")") >/dev/null
for f in /usr/sbin/pgsslgate /usr/share/man/man8/pgsslgate.8.gz \
    /usr/share/man/man5/pgsslgate.conf.5.gz /etc/pgsslgate/pgsslgate.conf \
    /lib/systemd/system/pgsslgate.service \
    /usr/share/doc/pgsslgate/examples/pgsslgate.socket; do
	dpkg -S "$f" >/dev/null 2>&1 || die "$f is not in the package"
done
grep -qx /etc/pgsslgate/pgsslgate.conf /var/lib/dpkg/info/pgsslgate.conffiles ||
	die "/etc/pgsslgate/pgsslgate.conf is not a conffile"
/usr/sbin/pgsslgate --version
uid=$(id -u pgsslgate) || die "no user pgsslgate"
[ "$uid" -lt 1000 ] || die "pgsslgate is not a system user (uid $uid)"
id -nG pgsslgate | grep -qw ssl-cert || die "pgsslgate is not in group ssl-cert"
[ "$(getent passwd pgsslgate | cut -d: -f7)" = /usr/sbin/nologin ] ||
	die "pgsslgate can log in"
grep -qx 'Type=notify' /lib/systemd/system/pgsslgate.service || die "unit is not Type=notify"
grep -qx 'ExecStart=/usr/sbin/pgsslgate /etc/pgsslgate/pgsslgate.conf' \
    /lib/systemd/system/pgsslgate.service || die "unit does not run /usr/sbin/pgsslgate"
systemd-analyze verify /lib/systemd/system/pgsslgate.service
for f in /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/ssl/private/ssl-cert-snakeoil.key; do
	[ -f "$f" ] || die "no $f"
done

check_conf() {
	runuser -u pgsslgate -- /usr/sbin/pgsslgate --check \
	    /etc/pgsslgate/pgsslgate.conf >"$work/check.out" 2>&1
}

say "--check of the installed configuration, backend down: fails, naming it"
pg_ctlcluster 15 main stop 2>/dev/null || true
if check_conf; then cat "$work/check.out"; die "--check passed with no backend"; fi
cat "$work/check.out"
grep -q 'localhost:5432' "$work/check.out" || die "--check does not name the backend"
grep -q '^pgsslgate --check: 1 problem found$' "$work/check.out" ||
	die "--check found other problems than the backend"

say "--check of the installed configuration, as pgsslgate, PostgreSQL on 5432"
pg_ctlcluster 15 main start
cluster_started=1
check_conf || { cat "$work/check.out"; die "--check of the installed configuration failed"; }
cat "$work/check.out"
grep -q '^private key file "/etc/ssl/private/ssl-cert-snakeoil.key": permissions accepted, matches the certificate$' \
    "$work/check.out" || die "--check does not accept the snakeoil key as pgsslgate"
grep -q '^serving certificate ' "$work/check.out" || die "--check does not report the certificate"
grep -qx 'backend localhost:5432 accepts connections' "$work/check.out" ||
	die "--check does not report the backend up"
grep -qx 'pgsslgate --check: no problems found' "$work/check.out" || die "no verdict line"

say "the installed daemon, as pgsslgate, serves TLS to psql with SCRAM"
runuser -u postgres -- psql -X -q -c "DROP ROLE IF EXISTS deb_ci" \
    -c "SET password_encryption = 'scram-sha-256'" \
    -c "CREATE ROLE deb_ci LOGIN PASSWORD 'deb-ci-pw'"
# setpriv execs, so that $! is the daemon itself, as systemd's MAINPID is.
setpriv --reuid=pgsslgate --regid=pgsslgate --init-groups \
    /usr/sbin/pgsslgate /etc/pgsslgate/pgsslgate.conf >"$work/gate.log" 2>&1 &
gate_pid=$!
for _ in $(seq 1 100); do
	grep -q 'ready to accept connections' "$work/gate.log" && break
	kill -0 "$gate_pid" 2>/dev/null || { cat "$work/gate.log"; die "the daemon exited"; }
	sleep 0.1
done
PGPASSWORD=deb-ci-pw psql -X "host=localhost port=6432 dbname=postgres user=deb_ci sslmode=require" \
    -c '\conninfo' -Atc 'select current_user' >"$work/psql.out" 2>&1 ||
	{ cat "$work/psql.out" "$work/gate.log"; die "psql through the installed daemon failed"; }
cat "$work/psql.out"
grep -q 'SSL connection (protocol: TLSv1\.[23]' "$work/psql.out" || die "psql's session is not TLS"
grep -qx 'deb_ci' "$work/psql.out" || die "the query did not run as deb_ci"
kill -TERM "$gate_pid"
wait "$gate_pid" || { cat "$work/gate.log"; die "the daemon did not exit 0 on SIGTERM"; }
gate_pid=
runuser -u postgres -- psql -X -q -c "DROP ROLE deb_ci"
pg_ctlcluster 15 main stop
cluster_started=0

say "apt-get purge pgsslgate"
apt-get purge -y -qq pgsslgate >/dev/null
for f in /usr/sbin/pgsslgate /etc/pgsslgate/pgsslgate.conf; do
	[ ! -e "$f" ] || die "purge left $f"
done
say "ok"
