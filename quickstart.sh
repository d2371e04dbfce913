#!/usr/bin/env bash
# The README's quick start on a fresh Debian 12 machine:
#   ./quickstart.sh demo    build, then show the ssl/require_ssl matrix live
#   ./quickstart.sh check   build, then run every test (make check)
# Missing build and test dependencies are installed with apt-get (as root,
# or through sudo), the node-postgres driver test's modules with npm ci.
# Extra ./configure flags can be passed in CONFIGURE_FLAGS.
set -euo pipefail

cd "$(dirname "$0")"

packages=(
	build-essential autoconf automake pkg-config
	libevent-dev libssl-dev libcmocka-dev libpq-dev
	openssl postgresql-15 postgresql-client-15 mandoc
	iproute2 util-linux sslscan python3 python3-psycopg python3-asyncpg
	default-jdk-headless libpostgresql-jdbc-java python3-yaml systemd haproxy
)
# node-postgres (tests/drivers/client-node-pg) needs Node.js and npm.  A
# node that is already there (Debian's, or one from elsewhere that brings
# its own npm) is kept; otherwise Debian's nodejs and npm are installed.
if ! command -v node >/dev/null 2>&1; then
	packages+=(nodejs npm)
elif ! command -v npm >/dev/null 2>&1; then
	packages+=(npm)
fi

usage() {
	echo "usage: $0 demo|check" >&2
	exit 2
}

install_missing() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "quickstart: installing ${missing[*]}"
	local sudo=()
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null ||
		    { echo "quickstart: run as root, or install: ${missing[*]}" >&2; exit 1; }
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq
	DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq \
	    --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts a cluster on install; the tests bring their own.
	"${sudo[@]}" pg_ctlcluster 15 main stop 2>/dev/null || true
}

# The driver matrix's node-postgres, as pinned in tests/drivers/node's
# package-lock.json: installed when missing or older than the lock file.
install_node_modules() {
	local dir=tests/drivers/node
	[ -f "$dir/node_modules/.package-lock.json" ] &&
		[ ! "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ] &&
		return 0
	echo "quickstart: npm ci --prefix $dir"
	npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >/dev/null
}

build() {
	[ -x configure ] || ./autogen.sh
	# shellcheck disable=SC2086
	[ -f Makefile ] || ./configure ${CONFIGURE_FLAGS:-}
	make -j"$(nproc)"
}

[ $# -eq 1 ] || usage
case "$1" in
demo)	install_missing; build; make demo ;;
check)	install_missing; install_node_modules; build; make -j"$(nproc)" check ;;
*)	usage ;;
esac
