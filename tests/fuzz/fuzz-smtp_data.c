/*
 * fuzz-smtp_data.c - the DATA reader against a plain model
 *
 * Octet 0 picks the size limit, octet 1 how the input is cut into reads;
 * the rest is what follows the 354.  The same input is also fed whole.
 * Properties: both feeds end at the same octet with the same verdict;
 * nothing after the final dot is consumed; a message that ends within its
 * limits has exactly the content a line-by-line model gives (lines end
 * only at CRLF, the first ".CRLF" line ends the data, one leading dot is
 * removed from every other line), however it was cut; and a message over
 * its size limit never hands on more than the limit and one line.  (How
 * much of an oversized message reaches the sink before the verdict
 * depends on the cuts; it is thrown away either way.)
 */
#include "config.h"

#include <string.h>

#include "fuzz.h"
#include "sbuf.h"
#include "smtp_data.h"

static void collect(void *ctx, const char *data, size_t len)
{
	sbuf_append(ctx, data, len);
}

/* feed - run the reader over in, chunk octets at a time (0: at once);
 * returns the octets consumed, SIZE_MAX when the end was not reached */
static size_t feed(const char *in, size_t len, uint64_t limit, size_t chunk,
		   struct smtp_data_reader *rd, struct sbuf *out)
{
	size_t pos = 0, n, step;
	bool done = false;

	smtp_data_begin(rd, limit, collect, out);
	while (pos < len && !done) {
		step = chunk == 0 || len - pos < chunk ? len - pos : chunk;
		n = smtp_data_feed(rd, in + pos, step, &done);
		FUZZ_CHECK(n <= step);
		FUZZ_CHECK(n == step || done);
		pos += n;
	}
	FUZZ_CHECK(rd->content == out->len);
	return done ? pos : SIZE_MAX;
}

/* model - the content and the end of the data, or SIZE_MAX */
static size_t model(const char *in, size_t len, struct sbuf *out)
{
	size_t start = 0, i;

	for (i = 0; i + 1 < len; i++) {
		if (in[i] != '\r' || in[i + 1] != '\n')
			continue;
		if (i - start == 1 && in[start] == '.')
			return i + 2;
		if (in[start] == '.' && i > start)
			start++;
		sbuf_append(out, in + start, i + 2 - start);
		start = i + 2;
		i++;
	}
	return SIZE_MAX;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t limits[] = {0, 1, 20, 1000, 33554432};
	struct smtp_data_reader a, b;
	struct sbuf out_a, out_b, out_m;
	const char *in = (const char *)data + 2;
	size_t len, end_a, end_b, end_m;
	uint64_t limit;

	if (size < 2)
		return 0;
	len = size - 2;
	limit = limits[data[0] % 5];
	sbuf_init(&out_a, 256);
	sbuf_init(&out_b, 256);
	sbuf_init(&out_m, 256);
	end_a = feed(in, len, limit, data[1] % 17, &a, &out_a);
	end_b = feed(in, len, limit, 0, &b, &out_b);
	FUZZ_CHECK(end_a == end_b);
	FUZZ_CHECK(a.status == b.status && a.counted == b.counted);
	if (a.status == SMTP_DATA_NOMINAL)
		FUZZ_CHECK(out_a.len == out_b.len &&
			   memcmp(out_a.data, out_b.data, out_a.len) == 0);
	if (limit != 0)
		FUZZ_CHECK(out_a.len <= limit + SMTP_DATA_LINE_LIMIT &&
			   out_b.len <= limit + SMTP_DATA_LINE_LIMIT);
	end_m = model(in, len, &out_m);
	FUZZ_CHECK(end_a == end_m);
	if (end_a != SIZE_MAX && a.status == SMTP_DATA_NOMINAL)
		FUZZ_CHECK(out_a.len == out_m.len &&
			   memcmp(out_a.data, out_m.data, out_a.len) == 0);
	sbuf_free(&out_a);
	sbuf_free(&out_b);
	sbuf_free(&out_m);
	return 0;
}
