//go:build linux

package process

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"
)

// Benchmarks of starting and calling functions, each with a same-run
// baseline: "bare" is a plain fork+exec of the same interpreter running the
// same launcher, code and protocol, without any sandbox. Each reports the
// median time to the first result as p50-ms (ns/op also counts teardown).
//
//	go test -run '^$' -bench Start -benchtime 40x ./internal/sandbox/process/

var benchCode = map[string]string{
	KindPython: pyHello,
	KindNode:   string(nodeFixtures.Hello),
}

// pyHeavy imports 20 standard modules, as reference/sandbox.md B6 measured:
// what a zygote saves grows with what the code loads.
const pyHeavy = `
import asyncio, email.mime.text, http.client, decimal, ssl, sqlite3, xml.etree.ElementTree, unittest
import json, csv, argparse, logging, urllib.request, concurrent.futures, subprocess
import multiprocessing, zipfile, tarfile, hashlib, datetime
def main(args):
    return {"greeting": "Hello, " + args.get("name", "stranger") + "!"}
`

// BenchmarkStart measures the time to the first result of a new worker,
// however it starts. "cold" and "stemcell" are a plain worker (a
// function's first, or any without zygotes); with zygotes (Python), a pool
// that grows gets forked workers: "grow-cold" and "grow-stemcell" are the
// call that grows the pool when no zygote is up yet (start one from a new
// sandbox or a stem cell, then fork), "zygote" a new worker forked from a
// running zygote.
func BenchmarkStart(b *testing.B) {
	for _, kind := range []string{KindPython, KindNode} {
		benchStarts(b, kind+"/", kind, benchCode[kind])
	}
}

// BenchmarkStartHeavy is BenchmarkStart for Python code with heavy imports.
func BenchmarkStartHeavy(b *testing.B) {
	benchStarts(b, "", KindPython, pyHeavy)
}

func benchStarts(b *testing.B, prefix, kind, code string) {
	b.Run(prefix+"bare", func(b *testing.B) { benchBare(b, kind, code) })
	b.Run(prefix+"cold", func(b *testing.B) { benchCold(b, kind, code, false) })
	b.Run(prefix+"stemcell", func(b *testing.B) { benchStemCell(b, kind, code) })
	if kind == KindPython {
		b.Run(prefix+"grow-cold", func(b *testing.B) { benchCold(b, kind, code, true) })
		b.Run(prefix+"grow-stemcell", func(b *testing.B) { benchGrowStemCell(b, kind, code) })
		b.Run(prefix+"zygote", func(b *testing.B) { benchZygote(b, kind, code, 0, true) })
		b.Run(prefix+"zygote-after-idle", func(b *testing.B) { benchZygote(b, kind, code, 200*time.Millisecond, true) })
		b.Run(prefix+"fork", func(b *testing.B) { benchZygote(b, kind, code, 0, false) })
		b.Run(prefix+"fork-after-idle", func(b *testing.B) { benchZygote(b, kind, code, 200*time.Millisecond, false) })
	}
	b.Run(prefix+"warm", func(b *testing.B) { benchWarm(b, kind, code) })
}

func reportP50(b *testing.B, ds []time.Duration) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/float64(time.Millisecond), "p50-ms")
}

func benchInvoke(b *testing.B, f sandbox.Function) (*sandbox.Result, time.Duration) {
	t0 := time.Now()
	res, err := f.Invoke(context.Background(), sandbox.Call{Params: json.RawMessage(`{"name":"bench"}`), Env: sandboxtest.Env(gust.NewActivationID(time.Now()))})
	d := time.Since(t0)
	if err != nil {
		b.Fatal(err)
	}
	if res.Status != gust.StatusSuccess {
		b.Fatalf("status %v: %s", res.Status, res.Result)
	}
	return res, d
}

// benchCold measures a new sandbox's first result. With grow, another
// call holds a worker (a pool slot), so the pool grows: with zygotes the
// call starts the function's zygote and forks.
func benchCold(b *testing.B, kind, code string, grow bool) {
	be := newBackend(b, Config{})
	f := prepare(b, be, kind, code, limits(0)).(*function)
	var ds []time.Duration
	for b.Loop() {
		if grow {
			b.StopTimer()
			_ = f.pool.acquire(context.Background()) // a call in flight
			b.StartTimer()
		}
		res, d := benchInvoke(b, f)
		if res.Start != sandbox.StartCold {
			b.Fatalf("start %s", res.Start)
		}
		ds = append(ds, d)
		b.StopTimer()
		if grow && f.zyg == nil {
			b.Fatal("no zygote")
		}
		f.closeIdle()
		f.closeZygote()
		f.pool = newPool(be.cfg.MaxWorkersPerFunction)
		b.StartTimer()
	}
	reportP50(b, ds)
}

func benchStemCell(b *testing.B, kind, code string) {
	benchCell(b, kind, code, false)
}

func benchGrowStemCell(b *testing.B, kind, code string) {
	benchCell(b, kind, code, true)
}

func benchCell(b *testing.B, kind, code string, grow bool) {
	be := newBackend(b, Config{StemCells: 1})
	var ds []time.Duration
	for b.Loop() {
		b.StopTimer()
		waitCells(b, be, kind, 1)
		f := prepare(b, be, kind, code, limits(0)).(*function)
		if grow {
			_ = f.pool.acquire(context.Background()) // a call in flight
		}
		b.StartTimer()
		res, d := benchInvoke(b, f)
		if res.Start != sandbox.StartPrewarmed {
			b.Fatalf("start %s", res.Start)
		}
		ds = append(ds, d)
		b.StopTimer()
		if grow && f.zyg == nil {
			b.Fatal("no zygote")
		}
		_ = f.Close(context.Background())
		b.StartTimer()
	}
	reportP50(b, ds)
}

// benchZygote measures a new worker from a running zygote: each iteration
// ends the idle worker, so the next call needs a new one: the spare, or
// without useSpare a fork made for the call. With idle, the host is left
// quiet that long before each call: moving a forked worker into its cgroup
// then waits for an RCU grace period (the kernel's
// cgroup_threadgroup_rwsem), which back-to-back migrations share.
func benchZygote(b *testing.B, kind, code string, idle time.Duration, useSpare bool) {
	be := newBackend(b, Config{})
	f := prepare(b, be, kind, code, limits(0)).(*function)
	_ = f.pool.acquire(context.Background()) // a call in flight: the pool grows
	benchInvoke(b, f)
	f.pool.release()
	if f.zyg == nil {
		b.Fatal("no zygote")
	}
	var ds []time.Duration
	for b.Loop() {
		b.StopTimer()
		for _, w := range f.pool.evict(time.Now().Add(time.Hour)) {
			w.destroy()
		}
		spare(b, f, !useSpare) // ready, or gone
		time.Sleep(idle)
		b.StartTimer()
		res, d := benchInvoke(b, f)
		if res.Start != sandbox.StartPrewarmed {
			b.Fatalf("start %s", res.Start)
		}
		ds = append(ds, d)
	}
	reportP50(b, ds)
}

func benchWarm(b *testing.B, kind, code string) {
	be := newBackend(b, Config{})
	f := prepare(b, be, kind, code, limits(0))
	benchInvoke(b, f)
	var ds []time.Duration
	for b.Loop() {
		res, d := benchInvoke(b, f)
		if res.Start != sandbox.StartWarm {
			b.Fatalf("start %s", res.Start)
		}
		ds = append(ds, d)
	}
	reportP50(b, ds)
}

// benchBare runs the launcher with a plain fork+exec: the cost of the
// interpreter itself, for comparison with the sandbox.
func benchBare(b *testing.B, kind, code string) {
	be := newBackend(b, Config{})
	rt := be.kind(kind)
	f := prepare(b, be, kind, code, limits(0)).(*function)
	argv := rt.argv(false)
	argv[len(argv)-1] = filepath.Join(be.launchDir, rt.launcher)
	if rt.hideProtocol {
		// Without the init helper that moves them, the protocol pipes stay
		// at fds 0 and 3; the launcher is told so.
		argv = append(argv, "0", "3")
	}
	var initMsg map[string]map[string]any
	if err := json.Unmarshal(f.initMsg, &initMsg); err != nil {
		b.Fatal(err)
	}
	initMsg["init"]["dir"] = f.code.dir
	initLine, _ := json.Marshal(initMsg)
	req, _ := appendRequest(nil, json.RawMessage(`{"name":"bench"}`), sandboxtest.Env("x"))
	null, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer null.Close()
	var ds []time.Duration
	for b.Loop() {
		t0 := time.Now()
		rr, rw, _ := os.Pipe()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = be.sandboxEnv()
		cmd.Dir = f.code.dir
		cmd.Stdout, cmd.Stderr = null, null
		cmd.ExtraFiles = []*os.File{rw}
		stdin, _ := cmd.StdinPipe()
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		rw.Close()
		br := bufio.NewReader(rr)
		if _, err := br.ReadBytes('\n'); err != nil { // ready
			b.Fatal(err)
		}
		stdin.Write(append(initLine, '\n'))
		if _, err := br.ReadBytes('\n'); err != nil {
			b.Fatal(err)
		}
		stdin.Write(req)
		line, err := br.ReadBytes('\n')
		if err != nil || line[0] != 'R' {
			b.Fatalf("bare run: %q %v", line, err)
		}
		ds = append(ds, time.Since(t0))
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		rr.Close()
	}
	reportP50(b, ds)
}
