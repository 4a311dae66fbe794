package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroups. Each sandbox gets its own cgroup in every hierarchy it uses, so
// its memory, pids and CPU are bounded and accounted alone and an OOM kill
// can be told apart from a crash.
//
// Hosts come in three layouts and all three must work:
//
//   - pure v2: one cgroup2 hierarchy with the controllers: memory.max,
//     memory.swap.max, pids.max, cpu.max, cgroup.kill, and the child is
//     cloned straight into its cgroup (CLONE_INTO_CGROUP), so nothing runs
//     outside it even for an instant;
//   - pure v1: one hierarchy per controller (memory, pids, cpu);
//   - hybrid (this project's CI): the controllers are bound to v1
//     hierarchies and the cgroup2 mount has none. The v2 cgroup is still
//     created, for CLONE_INTO_CGROUP and cgroup.kill, and the limits go to v1.
//
// On v1 the child is attached after clone but before it reads its spec:
// the init helper blocks on that read, so no function code runs first.
//
// Each Backend nests its cgroups under one parent per hierarchy,
// "<our own cgroup>/gust-<pid>-<rand>", so the supervisor's own limits
// still bound the sandboxes and one rmdir tree cleans everything up.

// controllers the sandbox limits use.
var wantControllers = []string{"memory", "pids", "cpu"}

// cgroupHost is the cgroup layout of the host and the backend's parent
// cgroups in it. It is built once by newCgroupHost.
type cgroupHost struct {
	v2     string          // the backend's parent directory in the cgroup2 hierarchy; "" if none
	v2Ctrl map[string]bool // controllers enabled for v2 children of v2
	v1     map[string]string
	// v1 maps a controller to the backend's parent directory in the v1
	// hierarchy that holds it, for the controllers v2 does not provide.
}

// mountInfo is one cgroup mount from /proc/self/mountinfo.
type mountInfo struct {
	root, point string
	v2          bool
	controllers []string
}

// newCgroupHost finds the hierarchies, creates the backend's parent
// cgroups and enables the controllers there. name is the parent's base
// name. parent, when set, replaces our own cgroup as the place to nest in
// (a path relative to each hierarchy's root, e.g. "/gust.slice").
func newCgroupHost(name, parent string) (*cgroupHost, error) {
	return newCgroupHostFrom("/proc/self/cgroup", "/proc/self/mountinfo", name, parent)
}

// newCgroupHostFrom is newCgroupHost reading our cgroups and the mounts
// from the given files, so every host layout can be tested on any host.
func newCgroupHostFrom(ownFile, mountFile, name, parent string) (*cgroupHost, error) {
	own, err := readOwnCgroups(ownFile)
	if err != nil {
		return nil, err
	}
	mounts, err := readCgroupMounts(mountFile)
	if err != nil {
		return nil, err
	}
	h := &cgroupHost{v2Ctrl: map[string]bool{}, v1: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			h.remove()
		}
	}()
	for _, m := range mounts {
		if !m.v2 {
			continue
		}
		base := parent
		if base == "" {
			base = own[""]
		}
		dir, ctrls, err := setupV2(m, base, name)
		if err != nil {
			return nil, err
		}
		h.v2 = dir
		for _, c := range ctrls {
			h.v2Ctrl[c] = true
		}
		break
	}
	for _, ctrl := range wantControllers {
		if h.v2Ctrl[ctrl] {
			continue
		}
		for _, m := range mounts {
			if m.v2 || !contains(m.controllers, ctrl) {
				continue
			}
			key := strings.Join(m.controllers, ",")
			base := parent
			if base == "" {
				base = own[key]
			}
			dir := filepath.Join(mountPath(m, base), name)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return nil, fmt.Errorf("cgroup: create %s: %w", dir, err)
			}
			h.v1[ctrl] = dir
			break
		}
	}
	if h.v2 == "" && len(h.v1) == 0 {
		return nil, errors.New("cgroup: no cgroup hierarchy is mounted")
	}
	ok = true
	h.reapStale()
	return h, nil
}

// reapStale removes the cgroups of backends whose process died without
// cleaning up (a crash, SIGKILL): "gust-<pid>-…" beside ours, where no
// process <pid> exists. Their sandboxes died with them (parent-death
// signal), so the cgroups are empty or about to be.
func (h *cgroupHost) reapStale() {
	parents := map[string]bool{}
	for _, d := range h.v1 {
		parents[filepath.Dir(d)] = true
	}
	if h.v2 != "" {
		parents[filepath.Dir(h.v2)] = true
	}
	for parent := range parents {
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if !e.IsDir() || !staleName(e.Name(), "gust-") {
				continue
			}
			dir := filepath.Join(parent, e.Name())
			children, _ := os.ReadDir(dir)
			for _, c := range children {
				if c.IsDir() {
					cg := &cgroup{host: h, v1: map[string]string{"": filepath.Join(dir, c.Name())}}
					cg.kill()
					_ = rmdirRetry(filepath.Join(dir, c.Name()))
				}
			}
			_ = rmdirRetry(dir)
		}
	}
}

// staleName reports whether name is prefix + "<pid>-…" for a pid that no
// longer exists.
func staleName(name, prefix string) bool {
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	pidText, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidText)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	_, err = os.Stat("/proc/" + pidText)
	return errors.Is(err, os.ErrNotExist)
}

// setupV2 creates the backend's parent in the v2 hierarchy and enables in
// it the wanted controllers that are available. v2 forbids enabling
// controllers for the children of a cgroup that holds processes (ours
// does: we are in it), so when that fails the parent moves to the root of
// the hierarchy, which is exempt; as root we may create cgroups there.
func setupV2(m mountInfo, base, name string) (string, []string, error) {
	avail := func(dir string) []string {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		var out []string
		for _, c := range strings.Fields(string(b)) {
			if contains(wantControllers, c) {
				out = append(out, c)
			}
		}
		return out
	}
	try := func(baseDir string) (string, []string, error) {
		ctrls := avail(baseDir)
		if len(ctrls) > 0 {
			if err := enable(baseDir, ctrls); err != nil {
				return "", nil, err
			}
		}
		dir := filepath.Join(baseDir, name)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", nil, fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
		if len(ctrls) > 0 {
			if err := enable(dir, ctrls); err != nil {
				_ = os.Remove(dir)
				return "", nil, err
			}
		}
		return dir, ctrls, nil
	}
	dir, ctrls, err := try(mountPath(m, base))
	if err != nil && base != "/" {
		dir, ctrls, err = try(m.point)
	}
	return dir, ctrls, err
}

// enable turns on ctrls for the children of dir.
func enable(dir string, ctrls []string) error {
	var b strings.Builder
	for _, c := range ctrls {
		b.WriteString("+" + c + " ")
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.TrimSpace(b.String())), 0); err != nil {
		return fmt.Errorf("cgroup: enable %v in %s: %w", ctrls, dir, err)
	}
	return nil
}

// mountPath maps a cgroup path to a directory under mount m. A mount may
// show only part of the hierarchy (its root is not "/" inside containers).
func mountPath(m mountInfo, cgPath string) string {
	rel, err := filepath.Rel(m.root, cgPath)
	if err != nil || strings.HasPrefix(rel, "..") {
		rel = "."
	}
	return filepath.Join(m.point, rel)
}

// readOwnCgroups parses /proc/self/cgroup into controller list → path; the
// v2 entry ("0::/path") has the key "".
func readOwnCgroups(file string) (map[string]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		out[parts[1]] = parts[2]
	}
	return out, nil
}

// readCgroupMounts lists the cgroup and cgroup2 mounts.
func readCgroupMounts(file string) ([]mountInfo, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	var out []mountInfo
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root point options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f1, f2 := strings.Fields(pre), strings.Fields(post)
		if len(f1) < 5 || len(f2) < 3 {
			continue
		}
		switch f2[0] {
		case "cgroup2":
			out = append(out, mountInfo{root: f1[3], point: unescapeMount(f1[4]), v2: true})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(f2[2], ",") {
				if o != "rw" && o != "ro" && !strings.Contains(o, "=") {
					ctrls = append(ctrls, o)
				}
			}
			out = append(out, mountInfo{root: f1[3], point: unescapeMount(f1[4]), controllers: ctrls})
		}
	}
	return out, sc.Err()
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasMemory reports whether memory can be limited.
func (h *cgroupHost) hasMemory() bool { return h.v2Ctrl["memory"] || h.v1["memory"] != "" }

// remove deletes the backend's parent cgroups; they must be empty.
func (h *cgroupHost) remove() error {
	var errs []error
	seen := map[string]bool{}
	for _, dir := range h.v1 {
		if !seen[dir] {
			seen[dir] = true
			errs = append(errs, rmdirRetry(dir))
		}
	}
	if h.v2 != "" {
		errs = append(errs, rmdirRetry(h.v2))
	}
	return errors.Join(errs...)
}

// cgroupLimits are the limits of one sandbox.
type cgroupLimits struct {
	MemoryBytes int64
	Pids        int
	CPUQuota    time.Duration // per 100 ms period; 0 = unlimited
	CPUWeight   int           // 1..10000, v2 scale (v1 shares are derived)
}

// cgroup is one sandbox's cgroup in each hierarchy.
type cgroup struct {
	host *cgroupHost
	v2   string            // "" if no v2 hierarchy
	v1   map[string]string // controller → dir
}

// newCgroup creates the cgroups of sandbox id and applies limits.
func (h *cgroupHost) newCgroup(id string, l cgroupLimits) (*cgroup, error) {
	cg := &cgroup{host: h, v1: map[string]string{}}
	if h.v2 != "" {
		dir := filepath.Join(h.v2, id)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
		cg.v2 = dir
	}
	for ctrl, parent := range h.v1 {
		dir := filepath.Join(parent, id)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			cg.remove()
			return nil, fmt.Errorf("cgroup: create %s: %w", dir, err)
		}
		cg.v1[ctrl] = dir
	}
	if err := cg.setLimits(l); err != nil {
		cg.remove()
		return nil, err
	}
	return cg, nil
}

// setLimits applies l; it is also how a stem cell takes the limits of the
// function it is given to.
func (cg *cgroup) setLimits(l cgroupLimits) error {
	h := cg.host
	var writes [][2]string
	if h.v2Ctrl["memory"] {
		writes = append(writes,
			[2]string{filepath.Join(cg.v2, "memory.max"), strconv.FormatInt(l.MemoryBytes, 10)},
			[2]string{filepath.Join(cg.v2, "memory.swap.max"), "0"},
			// One OOM kills the whole sandbox: a half-killed worker is
			// useless and its state unknown.
			[2]string{filepath.Join(cg.v2, "memory.oom.group"), "1"})
	} else if dir := cg.v1["memory"]; dir != "" {
		limit := strconv.FormatInt(l.MemoryBytes, 10)
		// The kernel keeps memsw (memory+swap) >= the memory limit, so
		// memsw is raised before the limit and lowered after it.
		memsw := filepath.Join(dir, "memory.memsw.limit_in_bytes")
		_, swapErr := os.Stat(memsw)
		hasSwap := swapErr == nil
		cur, _ := os.ReadFile(memsw)
		raising := hasSwap && parseInt(cur) < l.MemoryBytes
		if raising {
			writes = append(writes, [2]string{memsw, limit})
		}
		writes = append(writes, [2]string{filepath.Join(dir, "memory.limit_in_bytes"), limit})
		if hasSwap && !raising {
			writes = append(writes, [2]string{memsw, limit})
		}
		// Without swap accounting, keep the sandbox out of swap this way.
		writes = append(writes, [2]string{filepath.Join(dir, "memory.swappiness"), "0"})
	}
	if l.Pids > 0 {
		if h.v2Ctrl["pids"] {
			writes = append(writes, [2]string{filepath.Join(cg.v2, "pids.max"), strconv.Itoa(l.Pids)})
		} else if dir := cg.v1["pids"]; dir != "" {
			writes = append(writes, [2]string{filepath.Join(dir, "pids.max"), strconv.Itoa(l.Pids)})
		}
	}
	const period = 100 * time.Millisecond
	weight := min(max(l.CPUWeight, 1), 10000)
	if h.v2Ctrl["cpu"] {
		quota := "max"
		if l.CPUQuota > 0 {
			quota = strconv.FormatInt(l.CPUQuota.Microseconds(), 10)
		}
		writes = append(writes,
			[2]string{filepath.Join(cg.v2, "cpu.max"), quota + " " + strconv.FormatInt(period.Microseconds(), 10)},
			[2]string{filepath.Join(cg.v2, "cpu.weight"), strconv.Itoa(weight)})
	} else if dir := cg.v1["cpu"]; dir != "" {
		quota := "-1"
		if l.CPUQuota > 0 {
			quota = strconv.FormatInt(l.CPUQuota.Microseconds(), 10)
		}
		// v2 weight 100 is v1 shares 1024.
		shares := max(weight*1024/100, 2)
		writes = append(writes,
			[2]string{filepath.Join(dir, "cpu.cfs_period_us"), strconv.FormatInt(period.Microseconds(), 10)},
			[2]string{filepath.Join(dir, "cpu.cfs_quota_us"), quota},
			[2]string{filepath.Join(dir, "cpu.shares"), strconv.Itoa(shares)})
	}
	for _, w := range writes {
		if err := os.WriteFile(w[0], []byte(w[1]), 0); err != nil {
			if errors.Is(err, os.ErrNotExist) && strings.HasSuffix(w[0], "swappiness") {
				continue // not present on every kernel
			}
			return fmt.Errorf("cgroup: write %s=%s: %w", w[0], w[1], err)
		}
	}
	return nil
}

// v2FD opens the v2 cgroup for CLONE_INTO_CGROUP; -1 when there is none.
func (cg *cgroup) v2FD() (int, error) {
	if cg.v2 == "" {
		return -1, nil
	}
	fd, err := unix.Open(cg.v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("cgroup: open %s: %w", cg.v2, err)
	}
	return fd, nil
}

// attach moves pid into the v1 cgroups (v2 is joined at clone time).
func (cg *cgroup) attach(pid int) error {
	seen := map[string]bool{}
	for _, dir := range cg.v1 {
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup: attach %d to %s: %w", pid, dir, err)
		}
	}
	return nil
}

// attachAll moves pid into every cgroup of cg, v2 included: a process
// forked by a zygote was not cloned into it.
func (cg *cgroup) attachAll(pid int) error {
	if cg.v2 != "" {
		if err := os.WriteFile(filepath.Join(cg.v2, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("cgroup: attach %d to %s: %w", pid, cg.v2, err)
		}
	}
	return cg.attach(pid)
}

// oomKills returns how many processes the OOM killer ended in the cgroup.
func (cg *cgroup) oomKills() int64 {
	var file, key string
	switch {
	case cg.host.v2Ctrl["memory"]:
		file, key = filepath.Join(cg.v2, "memory.events"), "oom_kill"
	case cg.v1["memory"] != "":
		file, key = filepath.Join(cg.v1["memory"], "memory.oom_control"), "oom_kill"
	default:
		return 0
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(b) {
		if k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" ")); ok && string(k) == key {
			return parseInt(v)
		}
	}
	return 0
}

// kill ends every process in the cgroup: cgroup.kill on v2 (atomic, even
// against a fork bomb), SIGKILL by pid on v1.
func (cg *cgroup) kill() {
	if cg.v2 != "" {
		if err := os.WriteFile(filepath.Join(cg.v2, "cgroup.kill"), []byte("1"), 0); err == nil {
			return
		}
	}
	for _, dir := range cg.v1 {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// remove kills what is left and deletes the cgroups.
func (cg *cgroup) remove() error {
	var errs []error
	dirs := make([]string, 0, 4)
	for _, dir := range cg.v1 {
		if !contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	if cg.v2 != "" {
		dirs = append(dirs, cg.v2)
	}
	for _, dir := range dirs {
		if err := rmdirRetry(dir); err != nil {
			cg.kill()
			errs = append(errs, rmdirRetry(dir))
		}
	}
	return errors.Join(errs...)
}

// rmdirRetry removes a cgroup directory. A cgroup whose last process was
// just killed can stay busy for a moment while the kernel finishes it.
func rmdirRetry(dir string) error {
	var err error
	for i := range 50 {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(time.Duration(i+1) * time.Millisecond)
	}
	return fmt.Errorf("cgroup: remove %s: %w", dir, err)
}

func parseInt(b []byte) int64 {
	n, _ := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	return n
}
