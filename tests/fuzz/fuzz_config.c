/*
 * fuzz_config.c: libFuzzer target for the config parser (conf_load).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
 *       -Isrc tests/fuzz/fuzz_config.c src/conf.c src/util.c \
 *       $(pkg-config --cflags --libs json-c libcrypto) -o fuzz_config
 *   ./fuzz_config -dict=tests/fuzz/config.dict -max_total_time=30 \
 *       tests/fuzz/corpus/config
 *
 * Each input is written to a memfd and loaded by its /proc/self/fd
 * path, the way `cmgate -t -c FILE` reads a file; the API key comes
 * from the environment, so no key file is needed.  Besides the
 * sanitizers it checks the contract callers rely on: a config comes
 * back exactly when no message does, a loaded config holds what
 * check_config promises, and the key never shows in a message: each
 * input is loaded twice, with two different keys, and must give the
 * same message both times.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conf.h"

int	LLVMFuzzerInitialize(int *, char ***);
int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const fuzz_keys[2] = {
	"fuzz-api-key-0123456789", "other-api-key-ABCDEFGHIJ",
};

static int	fuzz_fd = -1;
static char	fuzz_path[64];

static void
check(int cond)
{
	if (!cond)
		abort();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_fd = memfd_create("cmgate-fuzz-config", 0);
	check(fuzz_fd != -1);
	snprintf(fuzz_path, sizeof(fuzz_path), "/proc/self/fd/%d", fuzz_fd);
	return 0;
}

/* Load the input with key number k; NULL with a message in err. */
static struct config *
load(int k, char *err, size_t errlen)
{
	check(setenv("CRYPTOMATE_API_KEY", fuzz_keys[k], 1) == 0);
	memset(err, 'x', errlen);
	err[0] = '\0';
	return conf_load(fuzz_path, err, errlen);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*c[2];
	char		 err[2][1024];
	int		 k;

	check(ftruncate(fuzz_fd, 0) == 0);
	check(pwrite(fuzz_fd, data, size, 0) == (ssize_t)size);
	for (k = 0; k < 2; k++)
		c[k] = load(k, err[k], sizeof(err[k]));
	check((c[0] == NULL) == (c[1] == NULL));
	if (c[0] == NULL) {
		check(err[0][0] != '\0');
		check(memchr(err[0], '\0', sizeof(err[0])) != NULL);
		check(strcmp(err[0], err[1]) == 0);
		return 0;
	}
	for (k = 0; k < 2; k++) {
		check(c[k]->refs == 1);
		check(c[k]->listen != NULL && strchr(c[k]->listen, ':') != NULL);
		check(c[k]->upstream.base_url != NULL &&
		    (strncmp(c[k]->upstream.base_url, "https://", 8) == 0 ||
		    strncmp(c[k]->upstream.base_url, "http://", 7) == 0));
		check(c[k]->ncallers >= 1 && c[k]->callers != NULL);
		check(c[k]->api_key != NULL &&
		    strcmp(c[k]->api_key, fuzz_keys[k]) == 0);
		check(c[k]->limits.max_body_bytes >= 2 &&
		    c[k]->limits.max_headers >= 4);
		conf_unref(c[k]);
	}
	return 0;
}
