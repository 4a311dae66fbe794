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
//	go test -run '^$' -bench . -benchtime 30x ./internal/sandbox/process/

var benchCode = map[string]string{
	KindPython: pyHello,
	KindNode:   string(nodeFixtures.Hello),
}

func BenchmarkStart(b *testing.B) {
	for _, kind := range []string{KindPython, KindNode} {
		b.Run(kind+"/bare", func(b *testing.B) { benchBare(b, kind) })
		b.Run(kind+"/cold", func(b *testing.B) { benchCold(b, kind) })
		b.Run(kind+"/stemcell", func(b *testing.B) { benchStemCell(b, kind) })
		b.Run(kind+"/warm", func(b *testing.B) { benchWarm(b, kind) })
	}
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

func benchCold(b *testing.B, kind string) {
	be := newBackend(b, Config{})
	f := prepare(b, be, kind, benchCode[kind], limits(0)).(*function)
	var ds []time.Duration
	for b.Loop() {
		res, d := benchInvoke(b, f)
		if res.Start != sandbox.StartCold {
			b.Fatalf("start %s", res.Start)
		}
		ds = append(ds, d)
		f.closeIdle()
		f.pool = newPool(be.cfg.MaxWorkersPerFunction)
	}
	reportP50(b, ds)
}

func benchStemCell(b *testing.B, kind string) {
	be := newBackend(b, Config{StemCells: 1})
	var ds []time.Duration
	for b.Loop() {
		b.StopTimer()
		waitCells(b, be, kind, 1)
		f := prepare(b, be, kind, benchCode[kind], limits(0))
		b.StartTimer()
		res, d := benchInvoke(b, f)
		if res.Start != sandbox.StartPrewarmed {
			b.Fatalf("start %s", res.Start)
		}
		ds = append(ds, d)
		_ = f.Close(context.Background())
	}
	reportP50(b, ds)
}

func benchWarm(b *testing.B, kind string) {
	be := newBackend(b, Config{})
	f := prepare(b, be, kind, benchCode[kind], limits(0))
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
func benchBare(b *testing.B, kind string) {
	be := newBackend(b, Config{})
	rt := be.kind(kind)
	f := prepare(b, be, kind, benchCode[kind], limits(0)).(*function)
	argv := rt.argv()
	argv[len(argv)-1] = filepath.Join(be.launchDir, rt.launcher)
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
