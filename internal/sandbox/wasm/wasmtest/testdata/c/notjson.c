// notjson: prints text that is not a JSON object.
#include <stdio.h>

int main(void) {
	puts("hello, world");
	return 0;
}
