/*
 * cidr.c - IPv4 and IPv6 networks
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "cidr.h"

static const unsigned char v4_mapped_prefix[12] = {0, 0, 0, 0, 0,    0,
						   0, 0, 0, 0, 0xff, 0xff};

/* parse_bits - a prefix length of at most max, decimal, no sign */
static int parse_bits(const char *text, unsigned max, unsigned *bits)
{
	unsigned long v;
	char *end;

	if (*text < '0' || *text > '9' || strlen(text) > 3)
		return -1;
	v = strtoul(text, &end, 10);
	if (*end != '\0' || v > max)
		return -1;
	*bits = (unsigned)v;
	return 0;
}

int cidr_parse(const char *text, struct cidr *c)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	memset(c, 0, sizeof(*c));
	if (inet_pton(AF_INET, addr, c->addr) == 1) {
		c->family = AF_INET;
		c->bits = 32;
	} else if (inet_pton(AF_INET6, addr, c->addr) == 1) {
		c->family = AF_INET6;
		c->bits = 128;
	} else {
		return -1;
	}
	if (slash != NULL && parse_bits(slash + 1, c->bits, &c->bits) < 0)
		return -1;
	return 0;
}

/* prefix_equal - the first bits bits of a and b agree */
static bool prefix_equal(const unsigned char *a, const unsigned char *b,
			 unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;
	unsigned char mask;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

bool cidr_match(const struct cidr *c, const char *addr)
{
	unsigned char bin[16];

	if (inet_pton(AF_INET, addr, bin) == 1)
		return c->family == AF_INET &&
		       prefix_equal(bin, c->addr, c->bits);
	if (inet_pton(AF_INET6, addr, bin) != 1)
		return false;
	if (c->family == AF_INET6)
		return prefix_equal(bin, c->addr, c->bits);
	/* An IPv4 client on a dual-stack socket. */
	return memcmp(bin, v4_mapped_prefix, 12) == 0 &&
	       prefix_equal(bin + 12, c->addr, c->bits);
}

bool cidr_match_any(const struct cidr *list, size_t n, const char *addr)
{
	for (size_t i = 0; i < n; i++) {
		if (cidr_match(&list[i], addr))
			return true;
	}
	return false;
}

void cidr_format(const struct cidr *c, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN];

	inet_ntop(c->family, c->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s/%u", addr, c->bits);
}
