//go:build linux

package process

import (
	"os"
	"path/filepath"
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
