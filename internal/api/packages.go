package api

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// OpenWhisk's package messages, verbatim.
const (
	msgPackageReserved   = "Package name 'default' is reserved."
	msgBindingOfBinding  = "Cannot bind to another package binding."
	msgBindingMissing    = "Binding references a package that does not exist."
	msgPackageToBinding  = "Resource is a package and cannot be converted into a binding."
	msgNotOnBinding      = "Operation not permitted on package binding."
	msgPackageNotEmptyFm = "Package not empty (contains %d entities). Set force param or delete package contents."
)

// readNamespace resolves the {ns} segment of a read that may cross
// namespaces: published packages and their actions are readable by all.
// What is readable is decided by the store's resolution (ResolvePackage,
// ResolveAction); writes use namespace, which refuses other namespaces.
func readNamespace(r *http.Request, id *store.Identity) (string, error) {
	ns := r.PathValue("ns")
	if ns == "_" || ns == id.Namespace {
		return id.Namespace, nil
	}
	if err := gust.ValidateName("namespace", ns); err != nil {
		return "", err
	}
	return ns, nil
}

// packagePut is the body of PUT .../packages/{name}; absent fields keep
// their value on update.
type packagePut struct {
	Parameters *gust.KeyValues `json:"parameters"`
	entityMeta
	Binding *gust.Binding `json:"binding"`
}

// packageView is a package as GET returns it: with the actions (and feeds)
// of the package that holds them.
type packageView struct {
	gust.Package
	Actions []actionRef `json:"actions"`
	Feeds   []actionRef `json:"feeds"`
}

// MarshalJSON keeps the embedded package's own marshaller from hiding the
// lists.
func (v packageView) MarshalJSON() ([]byte, error) {
	pkg, err := json.Marshal(v.Package)
	if err != nil {
		return nil, err
	}
	lists, err := json.Marshal(struct {
		Actions []actionRef `json:"actions"`
		Feeds   []actionRef `json:"feeds"`
	}{v.Actions, v.Feeds})
	if err != nil {
		return nil, err
	}
	// Splice {"actions":…,"feeds":…} into the package object.
	out := append(pkg[:len(pkg)-1:len(pkg)-1], ',')
	return append(out, lists[1:]...), nil
}

// actionRef is an entry of a package's actions or feeds.
type actionRef struct {
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Annotations gust.KeyValues `json:"annotations"`
}

// packageSummary is an entry of a package list: binding is false for a
// plain package.
type packageSummary struct {
	Namespace   string         `json:"namespace"`
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Publish     bool           `json:"publish"`
	Annotations gust.KeyValues `json:"annotations"`
	Updated     int64          `json:"updated"`
	Binding     any            `json:"binding"`
}

func packageName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	return name, gust.ValidateName("package", name)
}

func (s *Server) getPackage(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := readNamespace(r, id)
	if err != nil {
		return err
	}
	name, err := packageName(r)
	if err != nil {
		return err
	}
	rp, err := s.cfg.Entities.ResolvePackage(ns, name, id.Namespace)
	if err != nil {
		return err
	}
	// A binding shows itself, with the parameters it passes on and the
	// actions of the package it refers to.
	view := packageView{Package: *rp.Package, Actions: []actionRef{}, Feeds: []actionRef{}}
	if rp.Binding != nil {
		view.Package = *rp.Binding
	}
	view.Parameters = rp.Params
	for _, rec := range s.cfg.Entities.List(rp.Package.Namespace, store.TypeAction, rp.Package.Name, false) {
		a, err := rec.Action()
		if err != nil {
			return err
		}
		ref := actionRef{Name: a.Name, Version: a.Version, Annotations: a.Annotations}
		if _, feed := a.Annotations.Get("feed"); feed {
			view.Feeds = append(view.Feeds, ref)
		} else {
			view.Actions = append(view.Actions, ref)
		}
	}
	return writeJSON(w, http.StatusOK, view)
}

func (s *Server) listPackages(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := readNamespace(r, id)
	if err != nil {
		return err
	}
	pg, err := pageParams(r.URL.Query(), "packages")
	if err != nil {
		return err
	}
	var pkgs []*gust.Package
	for _, rec := range s.cfg.Entities.List(ns, store.TypePackage, "", false) {
		p, err := rec.Package()
		if err != nil {
			return err
		}
		// Another namespace shows only what it shares.
		if ns == id.Namespace || p.Publish {
			pkgs = append(pkgs, p)
		}
	}
	if pg.count {
		return writeJSON(w, http.StatusOK, map[string]int{"packages": len(pkgs)})
	}
	out := make([]packageSummary, 0, min(pg.limit, len(pkgs)))
	for i := pg.skip; i < len(pkgs) && len(out) < pg.limit; i++ {
		p := pkgs[i]
		sum := packageSummary{Namespace: p.Namespace, Name: p.Name, Version: p.Version, Publish: p.Publish,
			Annotations: p.Annotations, Updated: p.Updated, Binding: false}
		if p.IsBinding() {
			sum.Binding = p.Binding
		}
		if sum.Annotations == nil {
			sum.Annotations = gust.KeyValues{}
		}
		out = append(out, sum)
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) putPackage(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	name, err := packageName(r)
	if err != nil {
		return err
	}
	if name == "default" {
		return gust.Errorf(gust.KindInvalid, msgPackageReserved)
	}
	var in packagePut
	overwrite, err := s.putBody(w, r, &in)
	if err != nil {
		return err
	}
	p := gust.Path{Namespace: ns, Name: name}
	old, err := s.replaced(p, store.TypePackage, overwrite)
	if err != nil {
		return err
	}
	var pkg gust.Package
	var rev uint64
	if old != nil {
		cur, err := old.Package()
		if err != nil {
			return err
		}
		pkg, rev = *cur, old.Revision
		pkg.Version = gust.BumpVersion(cur.Version)
	} else {
		pkg = gust.Package{Version: "0.0.1", Parameters: gust.KeyValues{}, Annotations: gust.KeyValues{}}
	}
	pkg.Namespace, pkg.Name = ns, name
	if in.Binding != nil && !in.Binding.IsZero() {
		if old != nil && !pkg.IsBinding() {
			return gust.Errorf(gust.KindConflict, msgPackageToBinding)
		}
		b, err := s.checkBinding(*in.Binding, id.Namespace)
		if err != nil {
			return err
		}
		pkg.Binding = b
	}
	if in.Parameters != nil {
		if err := s.checkParams(*in.Parameters); err != nil {
			return err
		}
		pkg.Parameters = *in.Parameters
	}
	if err := s.applyMeta(in.entityMeta, &pkg.Annotations, &pkg.Version, &pkg.Publish); err != nil {
		return err
	}
	if pkg.IsBinding() {
		pkg.Annotations = pkg.Annotations.Set("binding", pkg.Binding)
	}
	pkg.Updated = s.now().UnixMilli()
	if err := s.putEntity(r.Context(), p, store.TypePackage, pkg, pkg.Updated, rev); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pkg)
}

// checkBinding resolves and validates the package a binding refers to.
func (s *Server) checkBinding(b gust.Binding, caller string) (gust.Binding, error) {
	if b.Namespace == "" || b.Namespace == "_" {
		b.Namespace = caller
	}
	if err := gust.ValidateName("namespace", b.Namespace); err != nil {
		return b, err
	}
	if err := gust.ValidateName("package", b.Name); err != nil {
		return b, err
	}
	rec, err := s.cfg.Entities.Get(b.Path())
	if err != nil || rec.Type != store.TypePackage {
		if b.Namespace != caller {
			// Another namespace's private names stay hidden.
			return b, gust.Forbidden(b.Path().String())
		}
		return b, gust.Errorf(gust.KindInvalid, msgBindingMissing)
	}
	target, err := rec.Package()
	if err != nil {
		return b, err
	}
	if b.Namespace != caller && !target.Publish {
		return b, gust.Forbidden(b.Path().String())
	}
	if target.IsBinding() {
		return b, gust.Errorf(gust.KindInvalid, msgBindingOfBinding)
	}
	return b, nil
}

func (s *Server) deletePackage(w http.ResponseWriter, r *http.Request, id *store.Identity) error {
	ns, err := namespace(r, id)
	if err != nil {
		return err
	}
	name, err := packageName(r)
	if err != nil {
		return err
	}
	force, err := boolParam(r.URL.Query(), "force", false)
	if err != nil {
		return err
	}
	p := gust.Path{Namespace: ns, Name: name}
	rec, err := s.cfg.Entities.GetType(p, store.TypePackage)
	if err != nil {
		return err
	}
	pkg, err := rec.Package()
	if err != nil {
		return err
	}
	contents := s.cfg.Entities.InPackage(ns, name)
	if len(contents) > 0 && !force {
		return gust.Errorf(gust.KindConflict, msgPackageNotEmptyFm, len(contents))
	}
	for _, c := range contents {
		if err := s.cfg.Entities.Delete(r.Context(), c.Path, c.Revision); err != nil {
			return err
		}
	}
	if err := s.cfg.Entities.Delete(r.Context(), p, rec.Revision); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pkg)
}

// checkParams validates an entity's parameters and their size.
func (s *Server) checkParams(kv gust.KeyValues) error {
	if err := kv.Validate("parameter"); err != nil {
		return err
	}
	if n := kv.Size(); n > s.cfg.Limits.MaxParameterSize {
		return gust.Errorf(gust.KindTooLarge, "The parameters are larger than allowed: %d > %d bytes.", n, s.cfg.Limits.MaxParameterSize)
	}
	return nil
}

// checkAnnotations validates an entity's annotations and their size.
func (s *Server) checkAnnotations(kv gust.KeyValues) error {
	if err := kv.Validate("annotation"); err != nil {
		return err
	}
	if n := kv.Size(); n > s.cfg.Limits.MaxParameterSize {
		return gust.Errorf(gust.KindTooLarge, "The annotations are larger than allowed: %d > %d bytes.", n, s.cfg.Limits.MaxParameterSize)
	}
	return nil
}

// putEntity stores doc at p: created when rev is 0, else replacing rev.
func (s *Server) putEntity(ctx context.Context, p gust.Path, typ string, doc any, updated int64, rev uint64) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	_, err = s.cfg.Entities.Put(ctx, p, &store.Record{Type: typ, Doc: raw, Updated: updated}, rev)
	return err
}

// entityRoutes adds the routes of packages, triggers and rules.
func (s *Server) entityRoutes() {
	s.mux.Handle("/api/v1/namespaces/{ns}/packages", s.auth(methods{"GET": s.listPackages}))
	s.mux.Handle("/api/v1/namespaces/{ns}/packages/{name}", s.auth(methods{
		"GET": s.getPackage, "PUT": s.putPackage, "DELETE": s.deletePackage,
	}))
	s.mux.Handle("/api/v1/namespaces/{ns}/triggers", s.auth(methods{"GET": s.listTriggers}))
	s.mux.Handle("/api/v1/namespaces/{ns}/triggers/{name}", s.auth(methods{
		"GET": s.getTrigger, "PUT": s.putTrigger, "POST": s.fireTrigger, "DELETE": s.deleteTrigger,
	}))
	s.mux.Handle("/api/v1/namespaces/{ns}/triggers/{name}/cloudevents", s.auth(methods{"POST": s.fireCloudEvent}))
	s.mux.Handle("/api/v1/namespaces/{ns}/rules", s.auth(methods{"GET": s.listRules}))
	s.mux.Handle("/api/v1/namespaces/{ns}/rules/{name}", s.auth(methods{
		"GET": s.getRule, "PUT": s.putRule, "POST": s.setRuleState, "DELETE": s.deleteRule,
	}))
}
