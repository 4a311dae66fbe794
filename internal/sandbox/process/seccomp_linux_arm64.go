package process

import "golang.org/x/sys/unix"

const (
	auditArch = unix.AUDIT_ARCH_AARCH64
	x32Bit    = 0 // no second 64-bit ABI; the arch check kills AArch32 calls
)

var blockedArch = []uintptr{unix.SYS_NFSSERVCTL}
