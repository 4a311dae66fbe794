// logs: writes "log line 0" .. "log line 999" to stderr, returns {"lines":1000}.
#include <stdio.h>

int main(void) {
	for (int i = 0; i < 1000; i++) fprintf(stderr, "log line %d\n", i);
	puts("{\"lines\":1000}");
	return 0;
}
