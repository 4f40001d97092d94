/*
 * bad_abi.c - a handler that claims another ABI version, so the tests can
 * see the daemon refuse it at start
 */
#include <aiosmtpd/handler.h>

const struct aiosmtpd_handler aiosmtpd_handler = {
	.abi_version = AIOSMTPD_HANDLER_ABI_VERSION + 98,
	.name = "bad_abi",
};
