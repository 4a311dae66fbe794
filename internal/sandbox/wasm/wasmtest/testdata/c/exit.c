// exit: logs a line and exits with status 3 without a result.
#include <stdio.h>
#include <stdlib.h>

int main(void) {
	fputs("giving up\n", stderr);
	exit(3);
}
