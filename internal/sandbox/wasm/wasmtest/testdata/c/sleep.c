// sleep: sleeps for an hour, so only a deadline that interrupts sleeps ends it.
#include <stdio.h>
#include <unistd.h>

int main(void) {
	sleep(3600);
	fputs("{}", stdout);
	return 0;
}
