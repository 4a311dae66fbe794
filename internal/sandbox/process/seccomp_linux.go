package process

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Seccomp. A blocklist, as in Docker's default profile (reference/sandbox.md
// B4): the syscalls a function has no business making (mounts, namespaces,
// ptrace, kernel modules, keyrings, bpf, io_uring, clock setting, …) fail
// with EPERM (ENOSYS for clone3 and io_uring, so that glibc and libuv fall
// back to clone and epoll). The filter is hand-written BPF: it is 60 lines,
// needs no dependency, and lets us put the architecture check first.
//
// The architecture check matters: on x86_64 a process can also enter the
// kernel through the i386 ABI (int 0x80) and the x32 ABI (syscall numbers
// with bit 30 set), whose numbers differ, so a filter keyed on x86_64
// numbers alone is bypassed (B4 measured exactly that with unshare).
// Any syscall not made through the native ABI kills the process.

// seccomp_data offsets.
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16 // low 32 bits of args[0] on little-endian machines
)

// Namespace flags a clone(2) from inside the sandbox may not use.
const nsFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWCGROUP

// blockedSyscalls fail with EPERM. Arch files add their own (blockedArch).
var blockedSyscalls = []uintptr{
	unix.SYS_MOUNT, unix.SYS_UMOUNT2, unix.SYS_PIVOT_ROOT, unix.SYS_CHROOT,
	unix.SYS_FSOPEN, unix.SYS_FSCONFIG, unix.SYS_FSMOUNT, unix.SYS_FSPICK,
	unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_OPEN_TREE_ATTR, unix.SYS_MOUNT_SETATTR,
	unix.SYS_UNSHARE, unix.SYS_SETNS,
	unix.SYS_PTRACE, unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_PIDFD_GETFD,
	unix.SYS_BPF, unix.SYS_PERF_EVENT_OPEN, unix.SYS_USERFAULTFD,
	unix.SYS_KEYCTL, unix.SYS_ADD_KEY, unix.SYS_REQUEST_KEY,
	unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE, unix.SYS_DELETE_MODULE,
	unix.SYS_KEXEC_LOAD, unix.SYS_KEXEC_FILE_LOAD, unix.SYS_REBOOT,
	unix.SYS_OPEN_BY_HANDLE_AT, unix.SYS_NAME_TO_HANDLE_AT,
	unix.SYS_SWAPON, unix.SYS_SWAPOFF, unix.SYS_SYSLOG, unix.SYS_ACCT,
	unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME, unix.SYS_CLOCK_ADJTIME, unix.SYS_ADJTIMEX,
	unix.SYS_SETHOSTNAME, unix.SYS_SETDOMAINNAME, unix.SYS_PERSONALITY,
	unix.SYS_QUOTACTL, unix.SYS_QUOTACTL_FD, unix.SYS_LOOKUP_DCOOKIE, unix.SYS_VHANGUP,
}

// enosysSyscalls fail with ENOSYS, which callers treat as "old kernel".
// clone3 takes its flags in memory, where BPF cannot look, so it cannot be
// filtered by flags like clone; glibc then uses clone.
var enosysSyscalls = []uintptr{
	unix.SYS_CLONE3, unix.SYS_IO_URING_SETUP, unix.SYS_IO_URING_ENTER, unix.SYS_IO_URING_REGISTER,
}

// socketFamilies are the only families socket(2) and socketpair(2) may
// ask for: unix, IPv4, IPv6 (loopback only: the network namespace has
// nothing else). Everything else fails with EPERM before the kernel looks
// at it, so a request for, say, AF_APPLETALK cannot make it load a protocol
// module, and netlink and packet sockets (interface enumeration, raw
// frames) are out of reach. An allow-list, not a range: the families
// between AF_INET and AF_INET6 (3 to 9) are old protocols with a history of
// kernel bugs.
var socketFamilies = []uint32{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }
func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// seccompFilter assembles the program.
func seccompFilter() []unix.SockFilter {
	const (
		ld    = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge   = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
		allow = unix.SECCOMP_RET_ALLOW
		kill  = unix.SECCOMP_RET_KILL_PROCESS
		eperm = unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)
		enosy = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)
	)
	p := []unix.SockFilter{
		stmt(ld, offArch),
		jump(jeq, auditArch, 1, 0),
		stmt(ret, kill),
		stmt(ld, offNr),
	}
	if x32Bit != 0 {
		p = append(p, jump(jge, x32Bit, 0, 1), stmt(ret, kill))
	}
	// Each list: "jeq nr → return X" pairs would need one return per
	// entry; instead jump to a shared return at the end of the list.
	list := func(nrs []uintptr, action uint32) {
		n := len(nrs)
		for i, nr := range nrs {
			// On a match, skip the remaining n-1-i compares and the
			// "not matched" jump that follows them.
			p = append(p, jump(jeq, uint32(nr), uint8(n-i), 0))
		}
		p = append(p, jump(unix.BPF_JMP|unix.BPF_JA, 0, 0, 0))
		p[len(p)-1].K = 1 // over the return below
		p = append(p, stmt(ret, action))
	}
	list(append(append([]uintptr(nil), blockedSyscalls...), blockedArch...), eperm)
	list(enosysSyscalls, enosy)
	// clone(flags, …) with a namespace flag.
	p = append(p,
		jump(jeq, uint32(unix.SYS_CLONE), 0, 3),
		stmt(ld, offArg0),
		jump(jset, nsFlags, 0, 1),
		stmt(ret, eperm),
		stmt(ld, offNr),
	)
	// socket(family, …) and socketpair(family, …) with a family not in
	// socketFamilies. The kernel reads the family as an int, so the low
	// 32 bits of the argument are what it sees too.
	n := len(socketFamilies)
	for _, nr := range []uintptr{unix.SYS_SOCKET, unix.SYS_SOCKETPAIR} {
		// Not this syscall: skip to the reload of nr below (A still holds
		// nr, so reloading it is harmless).
		p = append(p, jump(jeq, uint32(nr), 0, uint8(n+2)), stmt(ld, offArg0))
		for i, fam := range socketFamilies {
			// Allowed: jump over the remaining compares and the return.
			p = append(p, jump(jeq, fam, uint8(n-i), 0))
		}
		p = append(p, stmt(ret, eperm), stmt(ld, offNr))
	}
	return append(p, stmt(ret, allow))
}

// loadSeccomp installs the filter on every thread of the process. The
// caller has set no_new_privs on the calling thread.
func loadSeccomp() error {
	filter := seccompFilter()
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}
