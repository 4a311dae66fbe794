// env: returns {"activation_id": $__OW_ACTIVATION_ID, "environ": N, "args": M}
// where N counts the environment variables and M the arguments.
#include <stdio.h>
#include <stdlib.h>

extern char **environ;

int main(int argc, char **argv) {
	int n = 0;
	for (char **e = environ; e && *e; e++) n++;
	const char *id = getenv("__OW_ACTIVATION_ID");
	printf("{\"activation_id\":\"%s\",\"environ\":%d,\"args\":%d,\"argv0\":\"%s\"}\n", id ? id : "", n, argc, argv[0]);
	return 0;
}
