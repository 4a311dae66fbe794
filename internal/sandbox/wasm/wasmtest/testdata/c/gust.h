// Helpers shared by the C fixtures: read all of stdin, find a string field.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// read_stdin returns stdin as a NUL-terminated string.
static char *read_stdin(void) {
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	size_t r;
	while (buf && (r = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
		n += r;
		if (cap - n - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
		}
	}
	if (buf) buf[n] = 0;
	return buf;
}

// string_field copies the value of "key":"value" from a flat JSON object
// into out (escapes are not decoded: fixtures send plain strings). It
// returns 0 when the key is absent.
static int string_field(const char *json, const char *key, char *out, size_t outlen) {
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\"", key);
	const char *p = strstr(json, pat);
	if (!p) return 0;
	p = strchr(p + strlen(pat), '"');
	if (!p) return 0;
	p++;
	size_t i = 0;
	while (*p && *p != '"' && i + 1 < outlen) out[i++] = *p++;
	out[i] = 0;
	return 1;
}
