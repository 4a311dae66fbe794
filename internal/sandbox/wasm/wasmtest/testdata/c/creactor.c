// creactor: a Gust reactor in C (build with -mexec-model=reactor).
// Each call returns {"count": N}, N counting calls served by this instance.
// Input containing "loop" loops forever, "trap" traps, "badptr" returns a
// result outside memory, "error" returns {"error":"asked"}. Every call logs
// one line to stdout and one to stderr.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *in;
static char out[256];
static int count;

__attribute__((export_name("gust_alloc"))) char *gust_alloc(int32_t size) {
	free(in);
	in = malloc((size_t)size + 1);
	return in;
}

__attribute__((export_name("gust_handle"))) int64_t gust_handle(int32_t len) {
	in[len] = 0;
	count++;
	printf("call %d\n", count);
	fflush(stdout);
	fprintf(stderr, "input %d bytes\n", len);
	if (strstr(in, "\"loop\"")) {
		volatile int n = 0;
		for (;;) n++;
	}
	if (strstr(in, "\"trap\"")) __builtin_trap();
	if (strstr(in, "\"badptr\"")) return (int64_t)0xfffffff0u << 32 | 100;
	int n;
	if (strstr(in, "\"error\""))
		n = snprintf(out, sizeof out, "{\"error\":\"asked\",\"count\":%d}", count);
	else
		n = snprintf(out, sizeof out, "{\"count\":%d}", count);
	return (int64_t)(uintptr_t)out << 32 | (uint32_t)n;
}
