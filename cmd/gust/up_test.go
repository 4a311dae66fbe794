package main

import (
	"io"
	"testing"

	"github.com/gust-faas/gust/internal/sandbox/process"
)

// TestUpSandboxSettings: the process sandbox's settings come from flags,
// else the environment, else the sandbox's defaults; bad values are usage
// errors.
func TestUpSandboxSettings(t *testing.T) {
	clear := func(t *testing.T) {
		for _, k := range []string{"GUST_SANDBOX_TMP_MB", "GUST_SANDBOX_PIDS", "GUST_WORKERS_PER_FUNCTION", "GUST_SANDBOX_CPUS", "GUST_NO_ZYGOTE", "GUST_WASM_DIRS", "GUST_SYNC_ALWAYS", "GUST_KEEP_ALIVE"} {
			t.Setenv(k, "")
		}
	}
	t.Run("defaults", func(t *testing.T) {
		clear(t)
		s, err := parseUp(nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if s.tmpMB != process.DefaultTmpMB || s.pids != process.DefaultPids || s.workers != process.DefaultMaxWorkers || s.cpus != 0 || s.noZygote {
			t.Errorf("%+v", s)
		}
	})
	t.Run("env and flags", func(t *testing.T) {
		clear(t)
		t.Setenv("GUST_SANDBOX_TMP_MB", "16")
		t.Setenv("GUST_SANDBOX_CPUS", "0.5")
		t.Setenv("GUST_NO_ZYGOTE", "true")
		t.Setenv("GUST_WASM_DIRS", "guest/data="+t.TempDir())
		s, err := parseUp([]string{"--sandbox-pids", "32", "--workers-per-function", "2", "--sandbox-tmp-mb", "8"}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if s.tmpMB != 8 || s.pids != 32 || s.workers != 2 || s.cpus != 0.5 || !s.noZygote || len(s.wasmDirs) != 1 || s.wasmDirs[0].Name != "data" {
			t.Errorf("%+v", s)
		}
	})
	for name, env := range map[string][2]string{
		"bad int":  {"GUST_SANDBOX_PIDS", "many"},
		"bad cpus": {"GUST_SANDBOX_CPUS", "-1"},
		"bad dir":  {"GUST_WASM_DIRS", "nope"},
		"bad bool": {"GUST_NO_ZYGOTE", "yes"},
		"bad sync": {"GUST_SYNC_ALWAYS", "sometimes"},
		"bad keep": {"GUST_KEEP_ALIVE", "forever"},
	} {
		t.Run(name, func(t *testing.T) {
			clear(t)
			t.Setenv(env[0], env[1])
			if _, err := parseUp(nil, io.Discard); err == nil {
				t.Errorf("%s=%s accepted", env[0], env[1])
			} else if _, ok := err.(usageError); !ok {
				t.Errorf("%s=%s: %T %v, want a usage error", env[0], env[1], err, err)
			}
		})
	}
	t.Run("flag replaces env dirs", func(t *testing.T) {
		clear(t)
		t.Setenv("GUST_WASM_DIRS", "guest/a="+t.TempDir())
		s, err := parseUp([]string{"--wasm-dir", "guest/b=" + t.TempDir()}, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.wasmDirs) != 1 || s.wasmDirs[0].Name != "b" {
			t.Errorf("grants %+v, want only the flag's", s.wasmDirs)
		}
	})
	for _, args := range [][]string{{"--wasm-dir", "x"}, {"--sandbox-cpus", "-1"}, {"--keep-alive", "fixed:soon"}} {
		t.Run("bad flag "+args[0], func(t *testing.T) {
			clear(t)
			if _, err := parseUp(args, io.Discard); err == nil {
				t.Errorf("%v accepted", args)
			} else if _, ok := err.(usageError); !ok {
				t.Errorf("%v: %T %v, want a usage error", args, err, err)
			}
		})
	}
}
