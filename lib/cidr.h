/*
 * cidr.h - IPv4 and IPv6 networks ("192.0.2.0/24", "2001:db8::/32")
 *
 * For allow-lists in the configuration, such as the proxies a PROXY
 * protocol listener trusts.  An IPv4-mapped IPv6 address (::ffff:192.0.2.1,
 * what an IPv6 socket that also takes IPv4 reports) matches IPv4 networks.
 */
#ifndef AIOSMTPD_CIDR_H
#define AIOSMTPD_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct cidr {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	unsigned bits; /* prefix length */
};

/* CIDR_TEXT_SIZE - room for cidr_format(): an IPv6 address and "/128" */
#define CIDR_TEXT_SIZE 52

/*
 * cidr_parse - "ADDRESS" or "ADDRESS/BITS"
 *
 * A plain address is a network of one.  Host bits under the prefix are
 * allowed and ignored ("192.0.2.7/24" is 192.0.2.0/24).  Returns 0, or -1
 * when the text is neither.
 */
int cidr_parse(const char *text, struct cidr *c);

/* cidr_match - is addr (an IPv4 or IPv6 address in text) inside c?
 * False for text that is not an address. */
bool cidr_match(const struct cidr *c, const char *addr);

/* cidr_match_any - inside any of the n networks? */
bool cidr_match_any(const struct cidr *list, size_t n, const char *addr);

/* cidr_format - "ADDRESS/BITS" into buf (CIDR_TEXT_SIZE octets) */
void cidr_format(const struct cidr *c, char *buf, size_t size);

#endif
