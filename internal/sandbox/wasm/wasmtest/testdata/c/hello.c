// hello: {"name": N} -> {"greeting": "Hello, N!"}; N defaults to "stranger".
// Logs one line to stderr.
#include "gust.h"

int main(void) {
	char name[256] = "stranger";
	char *in = read_stdin();
	if (in) string_field(in, "name", name, sizeof name);
	fprintf(stderr, "hello: greeting %s\n", name);
	printf("{\"greeting\":\"Hello, %s!\"}\n", name);
	return 0;
}
