// env: returns {"activation_id": $__OW_ACTIVATION_ID, "environ": N, "args": M}
// where N counts the environment variables and M the arguments; given
// {"var": NAME} it adds "value": the variable's value (null when unset).
#include "gust.h"

extern char **environ;

int main(int argc, char **argv) {
	char *in = read_stdin();
	char var[128];
	int n = 0;
	for (char **e = environ; e && *e; e++) n++;
	const char *id = getenv("__OW_ACTIVATION_ID");
	printf("{\"activation_id\":\"%s\",\"environ\":%d,\"args\":%d,\"argv0\":\"%s\"", id ? id : "", n, argc, argv[0]);
	if (in && string_field(in, "var", var, sizeof var)) {
		const char *v = getenv(var);
		if (v) printf(",\"value\":\"%s\"", v);
		else printf(",\"value\":null");
	}
	printf("}\n");
	return 0;
}
