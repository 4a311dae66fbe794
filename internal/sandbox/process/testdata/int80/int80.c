/* An actionloop executable that makes one syscall per request, chosen by
 * the request: "native" calls unshare(CLONE_NEWUSER) through the x86_64
 * ABI, "int80" makes the i386 unshare (nr 310) through int 0x80, "getpid"
 * the i386 getpid (nr 20). The reply is {"ret": <raw return>}. The sandbox
 * must refuse the first (EPERM) and kill the process on the others. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(void) {
	char line[65536];
	while (fgets(line, sizeof line, stdin)) {
		long ret;
		if (strstr(line, "int80")) {
			__asm__ volatile("int $0x80" : "=a"(ret) : "a"(310L), "b"(0x10000000L) : "memory");
		} else if (strstr(line, "getpid")) {
			__asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
		} else {
			ret = syscall(SYS_unshare, 0x10000000);
			if (ret < 0) ret = -1000 - (long)errno;
		}
		dprintf(3, "{\"ret\":%ld}\n", ret);
		fflush(stdout);
	}
	return 0;
}
