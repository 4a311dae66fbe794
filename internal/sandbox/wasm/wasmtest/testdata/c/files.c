// files: {"read": PATH} returns {"content": first line of the file} or
// {"error": why}; {"write": PATH, "text": T} writes T to the file and
// returns {"written": true} or {"error": why}.
#include "gust.h"
#include <errno.h>

int main(void) {
	char *in = read_stdin();
	char path[512], text[256];
	if (string_field(in, "write", path, sizeof path)) {
		if (!string_field(in, "text", text, sizeof text)) text[0] = 0;
		FILE *f = fopen(path, "w");
		if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
			printf("{\"error\":\"write %s: %s\"}\n", path, strerror(errno));
			return 0;
		}
		printf("{\"written\":true}\n");
		return 0;
	}
	if (!string_field(in, "read", path, sizeof path)) {
		printf("{\"error\":\"give read or write\"}\n");
		return 0;
	}
	FILE *f = fopen(path, "r");
	if (!f) {
		printf("{\"error\":\"read %s: %s\"}\n", path, strerror(errno));
		return 0;
	}
	char line[256] = {0};
	if (!fgets(line, sizeof line, f)) line[0] = 0;
	fclose(f);
	line[strcspn(line, "\r\n\"\\")] = 0;
	printf("{\"content\":\"%s\"}\n", line);
	return 0;
}
