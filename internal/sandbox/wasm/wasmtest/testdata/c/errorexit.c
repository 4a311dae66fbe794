// errorexit: prints {"error":"bad input"} and exits with status 1.
#include <stdio.h>

int main(void) {
	puts("{\"error\":\"bad input\"}");
	return 1;
}
