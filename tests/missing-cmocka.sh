#!/bin/sh
# Stands in for the unit tests when configure found no cmocka, so that
# make check fails instead of passing without them.
echo "FAIL: the unit tests need cmocka, which configure did not find." >&2
echo "      Install the Debian package libcmocka-dev, then run ./configure again." >&2
exit 1
