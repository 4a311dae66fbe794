package e2e

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/app"
	"github.com/gust-faas/gust/internal/gusttest"
)

// cacheFiles lists the files of the node's compilation cache.
func cacheFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var files []string
	root := filepath.Join(dataDir, "wasm-cache")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("compilation cache: %v", err)
	}
	slices.Sort(files)
	return files
}

// ownCache keeps the compilation cache in the data directory (its
// default) rather than in the cache gusttest shares between tests.
func ownCache(c *app.Config) { c.WasmCacheDir = "" }

// TestRestart: state survives a restart on the same data directory.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	e := start(t, gusttest.WithDataDir(dir), ownCache)
	e.putAction("hello", "hello", map[string]any{"parameters": []any{map[string]any{"key": "name", "value": "saved"}}})
	e.putAction("noop", "noop", nil)
	var ids []string
	for _, name := range []string{"hello", "noop", "hello"} {
		r := e.invoke(name, nil)
		want(t, r, http.StatusOK)
		ids = append(ids, r.object(t)["activationId"].(string))
	}
	async := e.do("POST", actionsPath+"noop", nil)
	want(t, async, http.StatusAccepted)
	asyncID := async.object(t)["activationId"].(string)
	e.waitActivation(asyncID)
	ids = append(ids, asyncID)
	helloBefore := e.do("GET", actionsPath+"hello", nil).object(t)
	cached := cacheFiles(t, dir)
	if len(cached) == 0 {
		t.Fatalf("no compiled code in the cache after creating actions")
	}
	auth := e.node.Auth
	e.node.Stop(t)

	// A second node on the directory of a running one fails at once.
	running := start(t, gusttest.WithDataDir(dir), ownCache)
	_, err := gusttest.StartConfig(app.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second node on a locked data directory: %v, want an error saying it is in use", err)
	}
	if running.node.Auth != auth {
		t.Fatalf("guest credential changed across restart")
	}
	// The refused start did not disturb the running node.
	e = running
	if l, _, err := e.wsk.Actions.List("", nil); err != nil || len(l) != 2 {
		t.Fatalf("actions after restart: %d, %v", len(l), err)
	}
	got := e.do("GET", actionsPath+"hello", nil).object(t)
	for _, k := range []string{"version", "exec", "parameters", "annotations", "limits", "updated"} {
		if !jsonEqual(got[k], helloBefore[k]) {
			t.Errorf("action field %s changed across restart: %v -> %v", k, helloBefore[k], got[k])
		}
	}
	for _, id := range ids {
		a, _, err := e.wsk.Activations.Get(id)
		if err != nil || a.ActivationID != id || a.Response.Status != "success" {
			t.Errorf("activation %s after restart: %+v, %v", id, a, err)
		}
	}
	var listed []string
	for _, a := range listActivations(t, e, "") {
		listed = append(listed, a["activationId"].(string))
	}
	slices.Sort(listed)
	wantIDs := slices.Sorted(slices.Values(ids))
	if !slices.Equal(listed, wantIDs) {
		t.Errorf("listed after restart %v, want %v", listed, wantIDs)
	}
	logs, _, err := e.wsk.Activations.Logs(ids[0])
	if err != nil || len(logs.Logs) != 1 || !strings.Contains(logs.Logs[0], "hello: greeting saved") {
		t.Errorf("logs after restart: %v, %v", logs, err)
	}

	// Invoking works again, from the compilation cache of the first run.
	r := e.invoke("hello", nil)
	if want(t, r, http.StatusOK); field(r.object(t), "response", "result", "greeting") != "Hello, saved!" {
		t.Errorf("invoke after restart: %s", r.body)
	}
	want(t, e.invoke("noop", nil), http.StatusOK)
	if after := cacheFiles(t, dir); !slices.Equal(after, cached) {
		t.Errorf("the compilation cache changed after restart: %v -> %v (modules were compiled again)", cached, after)
	}
}

func listActivations(t *testing.T, e *env, query string) []map[string]any {
	t.Helper()
	r := e.do("GET", "/api/v1/namespaces/_/activations?limit=0"+query, nil)
	want(t, r, http.StatusOK)
	var l []map[string]any
	r.decode(t, &l)
	return l
}

// TestShutdownDrains: a graceful shutdown answers the requests in flight
// and loses no accepted work.
func TestShutdownDrains(t *testing.T) {
	dir := t.TempDir()
	e := startDefault(t, gusttest.WithDataDir(dir))
	// sleep never ends by itself: with a 500 ms limit it runs for 500 ms
	// and ends in a timeout.
	e.putAction("sleepy", "sleep", map[string]any{"limits": map[string]any{"timeout": 500}})
	e.putAction("hello", "hello", nil)

	free := e.node.Invoker.FreeMemory()
	type answer struct {
		status int
		body   []byte
		err    error
	}
	done := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", e.node.URL+actionsPath+"sleepy?blocking=true", nil)
		uuid, key, _ := strings.Cut(e.node.Auth, ":")
		req.SetBasicAuth(uuid, key)
		resp, err := rawClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		done <- answer{resp.StatusCode, body, err}
	}()
	// Wait until the activation runs: it then holds its memory on the invoker.
	eventually(t, 10*time.Second, "blocking invoke running", func() bool {
		return e.node.Invoker.FreeMemory() < free
	})
	// Non-blocking invocations accepted right before the shutdown.
	var queued []string
	for range 5 {
		r := e.do("POST", actionsPath+"hello", map[string]any{"name": "queued"})
		want(t, r, http.StatusAccepted)
		queued = append(queued, r.object(t)["activationId"].(string))
	}
	if err := e.node.Shutdown(context.Background()); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	e.node.App = nil // stopped; the cleanup must not stop it again

	a := <-done
	if a.err != nil {
		t.Fatalf("in-flight request lost by the shutdown: %v", a.err)
	}
	r := reply{status: a.status, body: a.body}
	want(t, r, http.StatusBadGateway)
	act := r.object(t)
	if msg := field(act, "response", "result", "error"); msg != "The action exceeded its time limits of 500 milliseconds (timeout of 500 ms exceeded)." {
		t.Errorf("in-flight answer: %s", r.body)
	}
	sleepyID := act["activationId"].(string)

	e = start(t, gusttest.WithDataDir(dir))
	if rec := e.waitActivation(sleepyID); field(rec, "response", "status") != "action developer error" {
		t.Errorf("drained activation record: %v", rec["response"])
	}
	for _, id := range queued {
		rec := e.waitActivation(id)
		if field(rec, "response", "result", "greeting") != "Hello, queued!" {
			t.Errorf("queued activation %s: %v", id, rec["response"])
		}
	}
}
