/*
 * testcert.h - a self-signed certificate for the TLS unit tests
 */
#ifndef AIOSMTPD_TESTCERT_H
#define AIOSMTPD_TESTCERT_H

/* testcert_make - an ECDSA P-256 certificate for CN=localhost, valid for
 * a day, and its key, made with the openssl command line; the test fails
 * if that cannot be done */
void testcert_make(const char *cert, const char *key);

#endif
