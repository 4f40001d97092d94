/*
 * ticket.c - TLS session ticket keys, renewed by the master, shared by
 * every worker
 *
 * The two keys sit in a shared anonymous mapping; newest counts the keys
 * made, and key[newest % 2] is the newer.  Only the master writes: it
 * fills the older slot, then publishes it by counting it.  A worker that
 * reads the older slot while the master overwrites it may see half of
 * each key; the ticket's HMAC then fails to check and the client gets a
 * full handshake, nothing worse.
 */
#include "config.h"

#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "log.h"
#include "sockstream.h"
#include "ticket.h"

struct ticket_key {
	unsigned char name[16]; /* tells the keys apart; in the ticket */
	unsigned char aes[32];  /* AES-256-CBC */
	unsigned char hmac[32]; /* HMAC-SHA256 */
};

struct ticket_keys {
	atomic_uint newest;
	int64_t made; /* sockstream_now() of the newer key */
	struct ticket_key key[2];
};

static struct ticket_keys *keys;

/* make_key - a fresh key in place of the older, then counted, which
 * makes it the newer */
static int make_key(int64_t now)
{
	unsigned newest = atomic_load(&keys->newest);
	struct ticket_key k;

	if (RAND_bytes((unsigned char *)&k, sizeof(k)) != 1)
		return -1;
	memcpy(&keys->key[(newest + 1) % 2], &k, sizeof(k));
	OPENSSL_cleanse(&k, sizeof(k));
	keys->made = now;
	atomic_store(&keys->newest, newest + 1);
	return 0;
}

void ticket_keys_rotate(int64_t now)
{
	if (keys == NULL || now - keys->made < TICKET_PERIOD * 1000LL)
		return;
	if (make_key(now) < 0)
		log_error("cannot make a new TLS ticket key; the old one "
			  "stays in use");
	else
		log_debug("new TLS ticket key");
}

/* use_key - set ctx and hctx up to seal (or open) with k */
static int use_key(const struct ticket_key *k, unsigned char *iv, int enc,
		   EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
						  (void *)k->hmac,
						  sizeof(k->hmac)),
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						 (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};

	if (EVP_CipherInit_ex(ctx, EVP_aes_256_cbc(), NULL, k->aes, iv, enc) !=
		    1 ||
	    EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return 0;
}

/*
 * ticket_cb - OpenSSL's ticket key callback: to seal, the newer key and
 * a random IV (1); to open, the key the ticket names: 1 for the newer,
 * 2 (open, then issue a new ticket) for the older.  0 when there is no
 * such key or a step fails: no ticket is issued, or the client gets a
 * full handshake.
 */
static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
		     EVP_CIPHER_CTX *ctx, EVP_MAC_CTX *hctx, int enc)
{
	unsigned newest = atomic_load(&keys->newest);
	int iv_len = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
	struct ticket_key k;
	int ret = 0;

	(void)ssl;
	if (enc) {
		memcpy(&k, &keys->key[newest % 2], sizeof(k));
		memcpy(name, k.name, sizeof(k.name));
		if (RAND_bytes(iv, iv_len) == 1 &&
		    use_key(&k, iv, 1, ctx, hctx) == 0)
			ret = 1;
	} else {
		for (int age = 0; age < 2 && ret == 0; age++) {
			memcpy(&k, &keys->key[(newest - (unsigned)age) % 2],
			       sizeof(k));
			if (memcmp(name, k.name, sizeof(k.name)) == 0 &&
			    use_key(&k, iv, 0, ctx, hctx) == 0)
				ret = 1 + age;
		}
	}
	OPENSSL_cleanse(&k, sizeof(k));
	return ret;
}

/* create - map the keys and make both, the newer one last */
static int create(void)
{
	int64_t now = sockstream_now();

	keys = mmap(NULL, sizeof(*keys), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (keys == MAP_FAILED) {
		keys = NULL;
		return -1;
	}
	atomic_init(&keys->newest, 0);
	if (make_key(now) < 0 || make_key(now) < 0) {
		munmap(keys, sizeof(*keys));
		keys = NULL;
		return -1;
	}
	return 0;
}

int ticket_keys_attach(SSL_CTX *ctx)
{
	if (keys == NULL && create() < 0)
		return -1;
	/* A ticket outlives neither its key nor one period. */
	SSL_CTX_set_timeout(ctx, TICKET_PERIOD);
	/* Tickets are the only way back into a session: OpenSSL's session
	 * cache would be each worker's own (a client seldom comes back to
	 * the same one), grow with every session the worker serves, and
	 * resume a session whose ticket key is gone. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) == 1 ? 0
									  : -1;
}
