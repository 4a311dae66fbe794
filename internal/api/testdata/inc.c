// inc: {"n": K} -> {"n": K+1}; a missing n counts as 0. Shows that each
// step of a sequence gets the previous step's result.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, stdin);
	buf[n] = 0;
	long k = 0;
	char *p = strstr(buf, "\"n\"");
	if (p) {
		p = strchr(p + 3, ':');
		if (p) k = strtol(p + 1, NULL, 10);
	}
	printf("{\"n\":%ld}\n", k + 1);
	return 0;
}
