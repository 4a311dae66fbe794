// bigresult: returns {"data": "xxx…"} with 2 MiB of x.
#include <stdio.h>
#include <string.h>

int main(void) {
	static char chunk[64 << 10];
	memset(chunk, 'x', sizeof chunk);
	fputs("{\"data\":\"", stdout);
	for (int i = 0; i < 32; i++) fwrite(chunk, 1, sizeof chunk, stdout);
	puts("\"}");
	return 0;
}
