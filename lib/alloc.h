/*
 * alloc.h - allocation that never returns NULL, and assertions that stay on
 *
 * Running out of memory in a worker is not a condition a mail session can
 * recover from in any useful way, so the wrappers log and abort instead of
 * handing NULL to every caller.  ASSERT() is for our own invariants and is
 * compiled in release builds too: a broken invariant must stop the process,
 * never let it carry on and lose mail.
 */
#ifndef AIOSMTPD_ALLOC_H
#define AIOSMTPD_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* xmemdup - copy n bytes into a new buffer with a NUL after them */
char *xmemdup(const void *p, size_t n);

/* Frees *p and sets it to NULL. */
#define XFREE(p)                                                               \
	do {                                                                   \
		free(p);                                                       \
		(p) = NULL;                                                    \
	} while (0)

void assert_failed(const char *expr, const char *file, int line)
	__attribute__((noreturn));

#define ASSERT(expr)                                                           \
	((expr) ? (void)0 : assert_failed(#expr, __FILE__, __LINE__))

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

#endif
