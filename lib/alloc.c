/*
 * alloc.c - allocation wrappers and the always-on assertion
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "log.h"

static void *check(void *p, size_t size)
{
	if (p == NULL && size != 0)
		log_panic("out of memory allocating %zu bytes", size);
	return p;
}

void *xmalloc(size_t size)
{
	return check(malloc(size == 0 ? 1 : size), size);
}

void *xcalloc(size_t nmemb, size_t size)
{
	return check(calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size),
		     nmemb * size);
}

void *xrealloc(void *ptr, size_t size)
{
	return check(realloc(ptr, size == 0 ? 1 : size), size);
}

char *xstrdup(const char *s)
{
	return xmemdup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	return xmemdup(s, strnlen(s, n));
}

char *xmemdup(const void *p, size_t n)
{
	char *copy = xmalloc(n + 1);

	memcpy(copy, p, n);
	copy[n] = '\0';
	return copy;
}

void assert_failed(const char *expr, const char *file, int line)
{
	log_panic("assertion failed at %s:%d: %s", file, line, expr);
}
