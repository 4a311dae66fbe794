package e2e

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/apache/openwhisk-client-go/whisk"
	"github.com/gust-faas/gust/internal/sandbox/sandboxtest"

	"github.com/gust-faas/gust/internal/sandbox/process"
	"github.com/gust-faas/gust/internal/sandbox/wasm/wasmtest"
)

// TestWskExecs sends the exec bodies OpenWhisk's own CLI makes, through
// openwhisk-client-go: wsk base64-encodes only zips, so a wasm module
// arrives zipped (`zip f.zip f.wasm; wsk action create f f.zip --kind
// wasm`); `wsk action create --native` sends kind blackbox with the
// dockerskeleton image and an executable or a zip holding exec.
func TestWskExecs(t *testing.T) {
	e := start(t)
	mod := wasmtest.Build(t, "hello")
	insert := func(name string, ex *whisk.Exec) error {
		_, _, err := e.wsk.Actions.Insert(&whisk.Action{Name: name, Namespace: "_", Exec: ex}, true)
		return err
	}
	b64 := func(b []byte) *string { s := base64.StdEncoding.EncodeToString(b); return &s }

	t.Run("wasm in a zip", func(t *testing.T) {
		zipped := procZip(t, map[string]string{"hello.wasm": string(mod), "README": "not code"})
		if err := insert("zipped", &whisk.Exec{Kind: "wasm", Code: b64(zipped)}); err != nil {
			t.Fatal(err)
		}
		act, status := procInvoke(t, e, "zipped", map[string]any{"name": "zip"})
		procWant(t, act, status, http.StatusOK, "success")
		got := e.do("GET", "/api/v1/namespaces/_/actions/zipped", nil)
		want(t, got, http.StatusOK)
		code, _ := field(got.object(t), "exec", "code").(string)
		if raw, err := base64.StdEncoding.DecodeString(code); err != nil || string(raw) != string(mod) {
			t.Errorf("the action keeps %d bytes of code, want the %d-byte module", len(raw), len(mod))
		}
	})
	t.Run("wasm zip with two modules and main", func(t *testing.T) {
		zipped := procZip(t, map[string]string{"a.wasm": string(mod), "b.wasm": string(mod)})
		err := insert("two", &whisk.Exec{Kind: "wasm", Code: b64(zipped)})
		if status, msg := wskError(t, err); status != http.StatusBadRequest || !strings.Contains(msg, "several .wasm files") {
			t.Fatalf("two modules, no main: %d %q", status, msg)
		}
		if err := insert("two", &whisk.Exec{Kind: "wasm", Code: b64(zipped), Main: "b.wasm"}); err != nil {
			t.Fatalf("two modules, main b.wasm: %v", err)
		}
		err = insert("none", &whisk.Exec{Kind: "wasm", Code: b64(procZip(t, map[string]string{"x.txt": "x"}))})
		if status, msg := wskError(t, err); status != http.StatusBadRequest || !strings.Contains(msg, "no .wasm file") {
			t.Fatalf("no module: %d %q", status, msg)
		}
	})
	t.Run("raw module text", func(t *testing.T) {
		// What wsk sends for a bare .wasm file: its bytes as a JSON string.
		raw := string(mod)
		err := insert("raw", &whisk.Exec{Kind: "wasm", Code: &raw})
		if status, msg := wskError(t, err); status != http.StatusBadRequest || !strings.Contains(msg, "zip it first") {
			t.Fatalf("raw module: %d %q", status, msg)
		}
	})
	t.Run("blackbox image", func(t *testing.T) {
		err := insert("docker", &whisk.Exec{Kind: "blackbox", Image: "someone/image:1", Code: b64([]byte("x"))})
		if status, msg := wskError(t, err); status != http.StatusBadRequest || !strings.Contains(msg, "runs no container images") {
			t.Fatalf("docker image: %d %q", status, msg)
		}
	})
	t.Run("native", func(t *testing.T) {
		if !e.node.Invoker.Supports(process.KindNative) {
			sandboxtest.Unavailable(t, "the process sandbox cannot run here")
		}
		zipped := procZip(t, map[string]string{"exec": string(procBuild(t, "native"))})
		if err := insert("skeleton", &whisk.Exec{Kind: "blackbox", Image: "openwhisk/dockerskeleton", Code: b64(zipped)}); err != nil {
			t.Fatal(err)
		}
		act, status := procInvoke(t, e, "skeleton", map[string]any{"name": "Gust"})
		procWant(t, act, status, http.StatusOK, "success")
		if k, _ := annotation(t, act, "kind"); k != "native" {
			t.Errorf("kind %v, want native", k)
		}
	})
}
