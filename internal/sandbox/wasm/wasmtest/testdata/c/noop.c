// noop: returns {} without reading its input.
#include <stdio.h>

int main(void) {
	fputs("{}", stdout);
	return 0;
}
