// error: returns {"error":"boom"}, an application error.
#include <stdio.h>

int main(void) {
	puts("{\"error\":\"boom\"}");
	return 0;
}
