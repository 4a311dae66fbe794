//go:build linux

package process

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReadCgroupMounts(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		mountinfo string
		want      []mountInfo
	}{
		"v2": {
			mountinfo: "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n",
			want:      []mountInfo{{root: "/", point: "/sys/fs/cgroup", v2: true}},
		},
		"hybrid": {
			mountinfo: "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n" +
				"40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n" +
				"41 31 0:38 /sub /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
			want: []mountInfo{
				{root: "/", point: "/sys/fs/cgroup/cpu,cpuacct", controllers: []string{"cpu", "cpuacct"}},
				{root: "/", point: "/sys/fs/cgroup/systemd", controllers: []string{"xattr"}},
				{root: "/sub", point: "/sys/fs/cgroup/unified", v2: true},
			},
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, []byte(tc.mountinfo), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readCgroupMounts(p)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %+v", got)
			}
			for i := range got {
				if got[i].root != tc.want[i].root || got[i].point != tc.want[i].point || got[i].v2 != tc.want[i].v2 ||
					strings.Join(got[i].controllers, ",") != strings.Join(tc.want[i].controllers, ",") {
					t.Errorf("mount %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
	m := mountInfo{root: "/sub", point: "/sys/fs/cgroup/unified", v2: true}
	if got := mountPath(m, "/sub/a/b"); got != "/sys/fs/cgroup/unified/a/b" {
		t.Errorf("mountPath = %s", got)
	}
	if got := mountPath(m, "/elsewhere"); got != "/sys/fs/cgroup/unified" {
		t.Errorf("mountPath outside the mount's root = %s", got)
	}
}

// TestCgroupPlacement: a worker's process is in its own cgroups, with the
// function's memory limit, before it answers anything.
func TestCgroupPlacement(t *testing.T) {
	b := newBackend(t, Config{Pids: 50})
	f := prepare(t, b, KindPython, pyHello, limits(0))
	call(t, f, `{}`)
	var workers []*worker
	b.mu.Lock()
	for x := range b.workers {
		workers = append(workers, x)
	}
	b.mu.Unlock()
	if len(workers) == 0 {
		t.Fatal("no worker")
	}
	// With a zygote there are two: the zygote and the worker forked from
	// it, which must have left the zygote's cgroups for its own.
	for _, w := range workers {
		checkCgroups(t, b, w)
	}
}

func checkCgroups(t *testing.T, b *Backend, w *worker) {
	t.Helper()
	cg, err := os.ReadFile("/proc/" + strconv.Itoa(w.p.pid()) + "/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(cg)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range []string{"memory", "pids", "cpu"} {
			if (strings.Contains(","+parts[1]+",", ","+c+",") || parts[1] == "" && b.cgroups.v2 != "") && !strings.HasSuffix(parts[2], "/"+w.id) {
				t.Errorf("cgroup line %q: not in the worker's cgroup %s (zygote %v)", line, w.id, w.isZygote)
			}
		}
	}
	memLimit := filepath.Join(w.p.cg.v2, "memory.max")
	if dir := w.p.cg.v1["memory"]; dir != "" {
		memLimit = filepath.Join(dir, "memory.limit_in_bytes")
	}
	if got, _ := os.ReadFile(memLimit); strings.TrimSpace(string(got)) != strconv.Itoa(128<<20) {
		t.Errorf("%s = %s, want 128 MiB", memLimit, got)
	}
}

// TestCgroupLayouts runs layout discovery and limit writing against
// pure-v2, pure-v1 and hybrid trees built from plain files, so each code
// path is exercised whatever this host mounts. (cgroupfs semantics such as
// enforcement are the kernel's; TestCgroupPlacement and the conformance
// suite check those on the real hierarchy.)
func TestCgroupLayouts(t *testing.T) {
	limits := cgroupLimits{MemoryBytes: 256 << 20, Pids: 64, CPUQuota: 50_000_000, CPUWeight: 100}
	v2Files := map[string]string{
		"memory.max": "268435456", "memory.swap.max": "0", "memory.oom.group": "1",
		"pids.max": "64", "cpu.max": "50000 100000", "cpu.weight": "100",
	}
	v1Files := map[string]map[string]string{
		"memory": {"memory.limit_in_bytes": "268435456", "memory.swappiness": "0"},
		"pids":   {"pids.max": "64"},
		"cpu":    {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000", "cpu.shares": "1024"},
	}
	all := "cpuset cpu io memory hugetlb pids"
	for _, tc := range []struct {
		name   string
		v2     string // controllers of the cgroup2 mount; "-" for no cgroup2 mount
		v1     bool   // memory, pids and cpu,cpuacct on v1 hierarchies
		busy   bool   // our own v2 cgroup refuses subtree_control (it holds processes)
		parent string
		wantV2 []string // controllers expected on v2
	}{
		{name: "pure v2", v2: all, wantV2: []string{"cpu", "memory", "pids"}},
		{name: "pure v2, own cgroup busy", v2: all, busy: true, wantV2: []string{"cpu", "memory", "pids"}},
		{name: "pure v2, parent set", v2: all, parent: "/gust.slice", wantV2: []string{"cpu", "memory", "pids"}},
		{name: "v2 without cpu", v2: "memory pids", v1: true, wantV2: []string{"memory", "pids"}},
		{name: "pure v1", v2: "-", v1: true},
		{name: "hybrid", v2: "", v1: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			own := "/system.slice/gust.service"
			base := own
			if tc.parent != "" {
				base = tc.parent
			}
			var mounts, ownLines strings.Builder
			mkdir := func(p string) {
				if err := os.MkdirAll(p, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(p, s string) {
				if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if tc.v2 != "-" {
				point := filepath.Join(root, "unified")
				mkdir(filepath.Join(point, base))
				write(filepath.Join(point, "cgroup.controllers"), tc.v2)
				write(filepath.Join(point, base, "cgroup.controllers"), tc.v2)
				if tc.busy {
					// A directory where the file should be makes the write fail,
					// as the kernel's EBUSY would.
					mkdir(filepath.Join(point, base, "cgroup.subtree_control"))
				}
				fmt.Fprintf(&mounts, "41 31 0:38 / %s rw,relatime - cgroup2 cgroup2 rw\n", point)
				fmt.Fprintf(&ownLines, "0::%s\n", own)
			}
			v1Points := map[string]string{}
			if tc.v1 {
				for i, ctrls := range []string{"memory", "pids", "cpu,cpuacct"} {
					point := filepath.Join(root, ctrls)
					mkdir(filepath.Join(point, base))
					fmt.Fprintf(&mounts, "%d 31 0:%d / %s rw,relatime - cgroup cgroup rw,%s\n", 50+i, 50+i, point, ctrls)
					fmt.Fprintf(&ownLines, "%d:%s:%s\n", i+2, ctrls, own)
					v1Points[strings.Split(ctrls, ",")[0]] = point
				}
			}
			mountFile, ownFile := filepath.Join(root, "mountinfo"), filepath.Join(root, "cgroup")
			write(mountFile, mounts.String())
			write(ownFile, ownLines.String())

			h, err := newCgroupHostFrom(ownFile, mountFile, "gust-1-x", tc.parent)
			if err != nil {
				t.Fatal(err)
			}
			var gotV2 []string
			for c := range h.v2Ctrl {
				gotV2 = append(gotV2, c)
			}
			slices.Sort(gotV2)
			if !slices.Equal(gotV2, tc.wantV2) {
				t.Errorf("v2 controllers = %v, want %v", gotV2, tc.wantV2)
			}
			switch {
			case tc.v2 == "-":
				if h.v2 != "" {
					t.Errorf("v2 parent %s with no cgroup2 mount", h.v2)
				}
			case tc.busy:
				// Enabling controllers in our own cgroup failed: the parent
				// moves to the hierarchy's root, which may have children with
				// controllers whatever it holds.
				if want := filepath.Join(root, "unified", "gust-1-x"); h.v2 != want {
					t.Errorf("v2 parent = %s, want %s", h.v2, want)
				}
			default:
				if want := filepath.Join(root, "unified", base, "gust-1-x"); h.v2 != want {
					t.Errorf("v2 parent = %s, want %s", h.v2, want)
				}
			}
			if h.v2 != "" && len(tc.wantV2) > 0 {
				b, _ := os.ReadFile(filepath.Join(h.v2, "cgroup.subtree_control"))
				if got := string(b); got != "+"+strings.Join(controllersIn(tc.v2), " +") {
					t.Errorf("subtree_control = %q", got)
				}
			}
			if !h.hasMemory() {
				t.Error("no memory controller found")
			}

			cg, err := h.newCgroup("sb1", limits)
			if err != nil {
				t.Fatal(err)
			}
			for file, want := range v2Files {
				ctrl, _, _ := strings.Cut(file, ".")
				b, err := os.ReadFile(filepath.Join(cg.v2, file))
				if !h.v2Ctrl[ctrl] {
					if err == nil {
						t.Errorf("%s written on v2 without the %s controller", file, ctrl)
					}
					continue
				}
				if string(b) != want {
					t.Errorf("v2 %s = %q, want %q", file, b, want)
				}
			}
			for ctrl, files := range v1Files {
				if h.v2Ctrl[ctrl] {
					if _, ok := h.v1[ctrl]; ok {
						t.Errorf("%s on both v1 and v2", ctrl)
					}
					continue
				}
				want := filepath.Join(v1Points[ctrl], base, "gust-1-x", "sb1")
				if cg.v1[ctrl] != want {
					t.Fatalf("v1 %s cgroup = %s, want %s", ctrl, cg.v1[ctrl], want)
				}
				for file, v := range files {
					if b, _ := os.ReadFile(filepath.Join(want, file)); string(b) != v {
						t.Errorf("v1 %s = %q, want %q", file, b, v)
					}
				}
			}

			// OOM kills are read from the hierarchy that limits memory.
			if h.v2Ctrl["memory"] {
				write(filepath.Join(cg.v2, "memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n")
			} else {
				write(filepath.Join(cg.v1["memory"], "memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
			}
			if n := cg.oomKills(); n != 2 {
				t.Errorf("oomKills = %d, want 2", n)
			}
		})
	}
}

// TestCgroupV1Swap: with swap accounting on v1, memory+swap ends equal to
// the memory limit, so the sandbox cannot swap, whether the limit rises or
// falls (the kernel refuses memsw below the limit, so the order of the two
// writes depends on the direction).
func TestCgroupV1Swap(t *testing.T) {
	for name, memsw := range map[string]string{"raising": "134217728", "lowering": "9223372036854771712"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(memsw), 0o644); err != nil {
				t.Fatal(err)
			}
			h := &cgroupHost{v2Ctrl: map[string]bool{}, v1: map[string]string{"memory": dir}}
			cg := &cgroup{host: h, v1: map[string]string{"memory": dir}}
			if err := cg.setLimits(cgroupLimits{MemoryBytes: 256 << 20}); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"} {
				if b, _ := os.ReadFile(filepath.Join(dir, f)); string(b) != "268435456" {
					t.Errorf("%s = %q, want 268435456", f, b)
				}
			}
		})
	}
}

// controllersIn lists the wanted controllers of a cgroup.controllers text,
// in its order.
func controllersIn(s string) []string {
	var out []string
	for _, c := range strings.Fields(s) {
		if contains(wantControllers, c) {
			out = append(out, c)
		}
	}
	return out
}
