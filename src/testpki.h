/*
 * testpki: `pgsslgate --make-test-pki`, a throwaway PKI written with
 * OpenSSL's API (root and intermediate CA, a server chain, client
 * certificates good and bad, a CRL) for trying the gate out and for tests.
 */
#ifndef TESTPKI_H
#define TESTPKI_H

#include <stddef.h>
#include <stdio.h>

/*
 * Write the PKI into dir (made if missing), the server certificate also
 * for names (host names or addresses), client certificates for users.
 * Nothing is overwritten: if any file exists, nothing is written.  What
 * each file is and how to use them goes to out.  -1 with err set on failure.
 */
int testpki_make(const char *dir, char *const *names, size_t nnames,
    char *const *users, size_t nusers, FILE *out, char *err, size_t errlen);

#endif
