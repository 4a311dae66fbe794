// membomb: allocates 1 MiB blocks until malloc fails, then aborts (a trap).
// The pointers live in a volatile array: otherwise clang -O2 removes the
// leaked allocations and the loop spins forever.
#include <stdlib.h>
#include <string.h>

static void *volatile keep[1 << 16];

int main(void) {
	for (int i = 0;; i++) {
		void *p = malloc(1 << 20);
		if (!p) abort();
		memset(p, i, 1 << 20);
		keep[i & 0xffff] = p;
	}
}
