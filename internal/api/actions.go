package api

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gust-faas/gust/internal/activation"
	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
	"github.com/gust-faas/gust/internal/store"
)

// actionPut is the body of PUT .../actions/{name}; absent fields keep their
// old value on update.
type actionPut struct {
	Exec           *execPut          `json:"exec"`
	Parameters     *gust.KeyValues   `json:"parameters"`
	Limits         *gust.LimitsPatch `json:"limits"`
	Version        *string           `json:"version"`
	Publish        *bool             `json:"publish"`
	Annotations    *gust.KeyValues   `json:"annotations"`
	DelAnnotations []string          `json:"delAnnotations"`
}

type execPut struct {
	Kind       string   `json:"kind"`
	Code       *string  `json:"code"`
	Main       string   `json:"main"`
	Image      string   `json:"image"`
	Components []string `json:"components"`
}

// family returns the runtime family of a kind: "python" of "python:3".
func family(kind string) string {
	f, _, _ := strings.Cut(kind, ":")
	return f
}

// resolveKind maps "family:default" (what clients send for a source file) to
// the family's default kind and checks the kind is available here; a kind
// known but not runnable on this node (its interpreter is missing) is
// refused with the reason, at create time rather than at invoke.
func (s *Server) resolveKind(kind string) (string, error) {
	kinds := s.cfg.Runtimes.Kinds()
	sort.Strings(kinds)
	if fam, ok := strings.CutSuffix(kind, ":default"); ok {
		for _, k := range kinds {
			if family(k) == fam {
				return k, nil
			}
		}
	}
	for _, k := range kinds {
		if k == kind {
			return k, nil
		}
	}
	for _, rt := range s.cfg.Runtimes.Runtimes() {
		if !rt.Available && (rt.Kind == kind || family(rt.Kind)+":default" == kind) {
			return "", gust.Errorf(gust.KindInvalid, "The runtime '%s' is not available on this node: %s", rt.Kind, rt.Reason)
		}
	}
	return "", gust.Errorf(gust.KindInvalid, "The specified runtime '%s' is not supported by this platform. Valid values are: %s.", kind, strings.Join(kinds, ", "))
}

func (s *Server) putAction(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	p, err := entityPath(ns, r.PathValue("rest"))
	if err != nil {
		return err
	}
	var in actionPut
	overwrite, err := s.putBody(w, r, &in)
	if err != nil {
		return err
	}
	if p.Package != "" {
		// An action lives in a plain package of its own namespace.
		prec, err := s.cfg.Entities.GetType(gust.Path{Namespace: ns, Name: p.Package}, store.TypePackage)
		if err != nil {
			return gust.Errorf(gust.KindNotFound, "The package %q does not exist.", p.Package)
		}
		if pkg, err := prec.Package(); err != nil {
			return err
		} else if pkg.IsBinding() {
			return gust.Errorf(gust.KindInvalid, msgNotOnBinding)
		}
	}
	old, err := s.replaced(p, store.TypeAction, overwrite)
	if err != nil {
		return err
	}
	a, rec, err := s.buildAction(r, p, &in, old)
	if err != nil {
		return err
	}
	var rev uint64
	if old != nil {
		rev = old.Revision
	}
	if _, err := s.cfg.Entities.Put(r.Context(), p, rec, rev); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, a)
}

// buildAction applies a PUT body to the old action (nil on create) and
// returns the new action and its record. Code is validated and compiled
// here, so a bad module fails the PUT rather than the first invoke.
func (s *Server) buildAction(r *http.Request, p gust.Path, in *actionPut, old *store.Record) (*gust.Action, *store.Record, error) {
	lim := s.cfg.Limits
	var a gust.Action
	var code []byte // new code, compiled once the limits are final
	rec := &store.Record{Type: store.TypeAction}
	if old != nil {
		cur, err := old.Action()
		if err != nil {
			return nil, nil, err
		}
		a = *cur
		a.Parameters = append(gust.KeyValues(nil), cur.Parameters...)
		a.Annotations = append(gust.KeyValues(nil), cur.Annotations...)
		rec.Digest, rec.CodeRef = old.Digest, old.CodeRef
		a.Version = gust.BumpVersion(cur.Version)
	} else {
		if in.Exec == nil {
			return nil, nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\nexec undefined: an action needs 'exec' with 'kind' and 'code'.")
		}
		a.Limits = gust.DefaultActionLimits()
		a.Version = "0.0.1"
		a.Annotations = gust.KeyValues{}
		a.Parameters = gust.KeyValues{}
	}
	a.Namespace, a.Name = p.EntityNamespace(), p.Name

	if in.Exec != nil && in.Exec.Kind == gust.ExecSequence {
		exec, err := s.buildSequence(p, in.Exec.Components)
		if err != nil {
			return nil, nil, err
		}
		a.Exec, rec.Digest, rec.CodeRef = exec, "", ""
	} else if in.Exec != nil {
		exec, c, err := s.buildExec(in.Exec)
		if err != nil {
			return nil, nil, err
		}
		a.Exec, code = exec, c
		rec.Digest = store.Digest(code)
	}
	if in.Parameters != nil {
		if err := in.Parameters.Validate("parameter"); err != nil {
			return nil, nil, err
		}
		if n := in.Parameters.Size(); n > lim.MaxParameterSize {
			return nil, nil, gust.Errorf(gust.KindTooLarge, "The parameters are larger than allowed: %d > %d bytes.", n, lim.MaxParameterSize)
		}
		a.Parameters = *in.Parameters
	}
	if in.Limits != nil {
		a.Limits = in.Limits.Apply(a.Limits)
	}
	if err := a.Limits.Validate(lim); err != nil {
		return nil, nil, err
	}
	if in.Version != nil {
		if !gust.ValidVersion(*in.Version) {
			return nil, nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\nversion %q is not a semantic version (major.minor.patch).", *in.Version)
		}
		a.Version = *in.Version
	}
	if in.Publish != nil {
		a.Publish = *in.Publish
	}
	a.Annotations = a.Annotations.Delete(in.DelAnnotations...)
	if in.Annotations != nil {
		if err := in.Annotations.Validate("annotation"); err != nil {
			return nil, nil, err
		}
		a.Annotations = a.Annotations.Merge(*in.Annotations)
	}
	if err := activation.ValidateRetryAnnotations(a.Annotations); err != nil {
		return nil, nil, err
	}
	if n := a.Annotations.Size(); n > lim.MaxParameterSize {
		return nil, nil, gust.Errorf(gust.KindTooLarge, "The annotations are larger than allowed: %d > %d bytes.", n, lim.MaxParameterSize)
	}
	if old == nil {
		if _, ok := a.Annotations.Get("provide-api-key"); !ok {
			a.Annotations = a.Annotations.Set("provide-api-key", false)
		}
	}
	a.Annotations = a.Annotations.Set("exec", a.Exec.Kind)
	if code == nil && old != nil && a.Exec.Kind != gust.ExecSequence && dirsChanged(old, &a) {
		// The granted directories are part of the prepared function: check
		// them now, on the code the action keeps.
		var err error
		if code, err = s.actionCode(r.Context(), old, &a); err != nil {
			return nil, nil, err
		}
	}
	if code != nil {
		// Compile now, with the limits and annotations the action runs with
		// (they are part of the prepared function): a bad module fails the
		// PUT, and the first invoke finds the function ready.
		if err := s.cfg.Runtimes.Prepare(r.Context(), &a, rec.Digest, code); err != nil {
			return nil, nil, err
		}
		if in.Exec != nil {
			ref, err := s.cfg.Entities.StoreCode(r.Context(), a.Exec.Code)
			if err != nil {
				return nil, nil, err
			}
			rec.CodeRef = ref
		}
	}
	if a.Exec.Kind == gust.ExecSequence {
		// As OpenWhisk, a sequence's parameters name its components.
		a.Parameters = gust.KeyValues{}.Set("_actions", a.Exec.Components)
	}
	a.Updated = s.now().UnixMilli()

	doc := a
	if rec.CodeRef != "" {
		doc.Exec.Code = "" // kept in the object store
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	rec.Doc, rec.Updated = raw, a.Updated
	return &a, rec, nil
}

// buildExec validates an exec and returns it with its decoded code.
func (s *Server) buildExec(in *execPut) (gust.Exec, []byte, error) {
	if in.Kind == "" {
		return gust.Exec{}, nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\nexec.kind is missing.")
	}
	kindName := in.Kind
	if kindName == "blackbox" {
		// `wsk action create --native` sends OpenWhisk's skeleton image
		// with an executable (or a zip holding exec): that is kind native.
		// Other images would need an OCI runtime.
		if img, _, _ := strings.Cut(in.Image, ":"); img != "" && img != "openwhisk/dockerskeleton" {
			return gust.Exec{}, nil, gust.Errorf(gust.KindInvalid, "The image '%s' cannot run here: this platform runs no container images. Use kind 'native' (or wsk --native) with an executable, or a zip holding one named exec.", in.Image)
		}
		kindName = "native"
	}
	kind, err := s.resolveKind(kindName)
	if err != nil {
		return gust.Exec{}, nil, err
	}
	if in.Code == nil || strings.TrimSpace(*in.Code) == "" {
		return gust.Exec{}, nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\nexec.code is missing: the action has no code.")
	}
	if n := len(*in.Code); n > s.cfg.Limits.MaxCodeSize {
		return gust.Exec{}, nil, gust.Errorf(gust.KindTooLarge, "The exec is larger than allowed: %d > %d bytes.", n, s.cfg.Limits.MaxCodeSize)
	}
	exec := gust.Exec{Kind: kind, Code: *in.Code, Binary: gust.LooksBase64(*in.Code), Main: in.Main}
	if kind == "wasm" && !exec.Binary {
		return gust.Exec{}, nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\na wasm action's code must be the module, base64-encoded (with wsk, zip it first: zip f.zip f.wasm; wsk action create f f.zip --kind wasm).")
	}
	code, err := exec.DecodeCode()
	if err != nil {
		return gust.Exec{}, nil, err
	}
	if kind == "wasm" && bytes.HasPrefix(code, []byte("PK\x03\x04")) {
		// OpenWhisk's CLI sends only zips base64-encoded: a module comes
		// zipped. The action keeps the module itself.
		if code, err = wasmFromZip(code, in.Main, s.cfg.Limits.MaxCodeSize); err != nil {
			return gust.Exec{}, nil, err
		}
		exec.Code, exec.Main = base64.StdEncoding.EncodeToString(code), ""
	}
	return exec, code, nil
}

// dirsChanged reports whether an update changes the host directories the
// action asks for.
func dirsChanged(old *store.Record, a *gust.Action) bool {
	cur, err := old.Action()
	if err != nil {
		return true
	}
	was, _ := cur.Annotations.Get(sandbox.DirsAnnotation)
	now, _ := a.Annotations.Get(sandbox.DirsAnnotation)
	return !bytes.Equal(was, now)
}

// actionCode returns the decoded code an action keeps (inline, or in the
// object store).
func (s *Server) actionCode(ctx context.Context, rec *store.Record, a *gust.Action) ([]byte, error) {
	exec := a.Exec
	if rec.CodeRef != "" {
		code, err := s.cfg.Entities.LoadCode(ctx, rec.CodeRef)
		if err != nil {
			return nil, gust.Wrap(gust.KindUnavailable, gust.MsgUnavailable, err)
		}
		exec.Code = code
	}
	return exec.DecodeCode()
}

// wasmFromZip returns the module in a zip: the entry named main, else its
// only .wasm file. The module is read no further than max bytes.
func wasmFromZip(data []byte, main string, max int) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, gust.Errorf(gust.KindInvalid, "The request content was malformed:\nthe wasm action's zip cannot be read: %v", err)
	}
	var found []*zip.File
	for _, f := range zr.File {
		if main != "" && f.Name == main || main == "" && strings.HasSuffix(f.Name, ".wasm") {
			found = append(found, f)
		}
	}
	switch {
	case len(found) == 0 && main != "":
		return nil, gust.Errorf(gust.KindInvalid, "The wasm action's zip has no entry %q.", main)
	case len(found) == 0:
		return nil, gust.Errorf(gust.KindInvalid, "The wasm action's zip holds no .wasm file.")
	case len(found) > 1:
		return nil, gust.Errorf(gust.KindInvalid, "The wasm action's zip holds several .wasm files: name the module with main (wsk --main).")
	}
	rc, err := found[0].Open()
	if err != nil {
		return nil, gust.Errorf(gust.KindInvalid, "The wasm action's zip entry %q cannot be read: %v", found[0].Name, err)
	}
	defer rc.Close()
	mod, err := io.ReadAll(io.LimitReader(rc, int64(max)+1))
	if err != nil {
		return nil, gust.Errorf(gust.KindInvalid, "The wasm action's zip entry %q cannot be read: %v", found[0].Name, err)
	}
	if len(mod) > max {
		return nil, gust.Errorf(gust.KindTooLarge, "The exec is larger than allowed: the module in the zip is over %d bytes.", max)
	}
	return mod, nil
}

func (s *Server) getAction(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	// Actions of published packages are readable from other namespaces;
	// ResolveAction decides.
	ns, err := readNamespace(r, id)
	if err != nil {
		return err
	}
	rest := r.PathValue("rest")
	if pkg, ok := strings.CutSuffix(rest, "/"); ok && !strings.Contains(pkg, "/") {
		return s.listActionsIn(w, r, ns, pkg, id.Namespace)
	}
	p, err := entityPath(ns, rest)
	if err != nil {
		return err
	}
	ra, err := s.cfg.Entities.ResolveAction(p, id.Namespace)
	if err != nil {
		return err
	}
	rec, a := ra.Record, ra.Action
	withCode, err := boolParam(r.URL.Query(), "code", true)
	if err != nil {
		return err
	}
	out := *a
	if ra.Params != nil {
		// As OpenWhisk, an action in a package shows the parameters it
		// inherits (package < binding < action).
		out.Parameters = ra.Params.Merge(a.Parameters)
	}
	if !withCode {
		out.Exec.Code = ""
	} else if rec.CodeRef != "" {
		code, err := s.cfg.Entities.LoadCode(r.Context(), rec.CodeRef)
		if err != nil {
			return err
		}
		out.Exec.Code = code
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteAction(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	p, err := entityPath(ns, r.PathValue("rest"))
	if err != nil {
		return err
	}
	rec, err := s.cfg.Entities.GetType(p, store.TypeAction)
	if err != nil {
		return err
	}
	if err := s.cfg.Entities.Delete(r.Context(), p, rec.Revision); err != nil {
		return err
	}
	a, err := rec.Action()
	if err != nil {
		return err
	}
	out := *a
	out.Exec.Code = ""
	return writeJSON(w, http.StatusOK, out)
}

// actionSummary is an entry of an action list.
type actionSummary struct {
	Namespace   string         `json:"namespace"`
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Publish     bool           `json:"publish"`
	Annotations gust.KeyValues `json:"annotations"`
	Limits      gust.Limits    `json:"limits"`
	Exec        struct {
		Binary bool `json:"binary"`
	} `json:"exec"`
	Updated int64 `json:"updated"`
}

func (s *Server) listActions(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	return s.writeActionList(w, r, s.cfg.Entities.List(ns, store.TypeAction, "", true))
}

func (s *Server) listActionsIn(w http.ResponseWriter, r *http.Request, ns, pkg, caller string) error {
	if err := gust.ValidateName("package", pkg); err != nil {
		return err
	}
	// A binding lists the actions of the package it refers to.
	rp, err := s.cfg.Entities.ResolvePackage(ns, pkg, caller)
	if err != nil {
		return err
	}
	return s.writeActionList(w, r, s.cfg.Entities.List(rp.Package.Namespace, store.TypeAction, rp.Package.Name, false))
}

func (s *Server) writeActionList(w http.ResponseWriter, r *http.Request, recs []*store.Record) error {
	pg, err := pageParams(r.URL.Query(), "actions")
	if err != nil {
		return err
	}
	if pg.count {
		return writeJSON(w, http.StatusOK, map[string]int{"actions": len(recs)})
	}
	out := make([]actionSummary, 0, min(pg.limit, len(recs)))
	for i := pg.skip; i < len(recs) && len(out) < pg.limit; i++ {
		a, err := recs[i].Action()
		if err != nil {
			return err
		}
		sum := actionSummary{Namespace: a.Namespace, Name: a.Name, Version: a.Version, Publish: a.Publish,
			Annotations: a.Annotations, Limits: a.Limits, Updated: a.Updated}
		sum.Exec.Binary = a.Exec.Binary
		out = append(out, sum)
	}
	return writeJSON(w, http.StatusOK, out)
}

// invokeQuery reads an invoke's query: blocking, result, and timeout (ms,
// at most maxWait; maxWait when absent), with OpenWhisk's messages.
func invokeQuery(q url.Values, maxWait int) (blocking, resultOnly bool, wait time.Duration, err error) {
	if blocking, err = boolParam(q, "blocking", false); err != nil {
		return
	}
	if resultOnly, err = boolParam(q, "result", false); err != nil {
		return
	}
	wait = time.Duration(maxWait) * time.Millisecond
	if v := q.Get("timeout"); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 1 || n > maxWait {
			return false, false, 0, gust.Errorf(gust.KindInvalid, "Timeout must be number of milliseconds up to %d.", maxWait)
		}
		wait = time.Duration(n) * time.Millisecond
	}
	return blocking, resultOnly, wait, nil
}

// invokeAction runs an action: blocking calls wait up to `timeout` ms (at
// most the blocking limit) and then fall back to 202 with the id.
func (s *Server) invokeAction(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	received := s.now()
	// Actions of published packages may be invoked from other namespaces;
	// the activation service's resolution decides.
	ns, err := readNamespace(r, id)
	if err != nil {
		return err
	}
	p, err := entityPath(ns, r.PathValue("rest"))
	if err != nil {
		return err
	}
	blocking, resultOnly, wait, err := invokeQuery(r.URL.Query(), s.cfg.Limits.MaxBlockingWait)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, s.cfg.Limits.MaxPayloadSize)
	if err != nil {
		return err
	}
	out, err := s.cfg.Invoker.Invoke(r.Context(), activation.Request{
		Caller: id, Path: p, Params: body, Blocking: blocking, Wait: wait, Received: received,
	})
	if err != nil {
		return err
	}
	w.Header().Set("x-openwhisk-activation-id", out.ActivationID)
	w.Header().Set("X-Gust-Activation-Id", out.ActivationID)
	act := out.Activation
	if act == nil {
		return writeJSON(w, http.StatusAccepted, map[string]string{"activationId": out.ActivationID})
	}
	status := http.StatusOK
	switch act.Response.StatusCode {
	case gust.StatusApplicationError, gust.StatusDeveloperError:
		status = http.StatusBadGateway
	case gust.StatusInternalError:
		status = http.StatusInternalServerError
	}
	result := act.Response.Result
	if len(result) == 0 {
		result = json.RawMessage("{}")
	}
	// An array result is returned bare even without result=true, as OpenWhisk does.
	if resultOnly || bytes.HasPrefix(bytes.TrimSpace(result), []byte("[")) {
		return writeRaw(w, status, result)
	}
	return writeActivation(w, status, act)
}

// writeActivation writes the activation's own encoding as it is:
// json.Marshal would call the same encoder (Activation.MarshalJSON) and
// then check, compact and copy its output once more.
func writeActivation(w http.ResponseWriter, status int, a *gust.Activation) error {
	b, err := a.AppendJSON(make([]byte, 0, 512+len(a.Response.Result)))
	if err != nil {
		return err
	}
	return writeRaw(w, status, b)
}
