package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"

	"github.com/gust-faas/gust/internal/gust"
)

// Package is a package as GET returns it: with its actions and feeds.
type Package struct {
	gust.Package
	Actions []PackageAction `json:"actions"`
	Feeds   []PackageAction `json:"feeds"`
}

// PackageAction is an entry of a package's actions or feeds.
type PackageAction struct {
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Annotations gust.KeyValues `json:"annotations"`
}

// UnmarshalJSON decodes the embedded package and the lists.
func (p *Package) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &p.Package); err != nil {
		return err
	}
	var lists struct {
		Actions []PackageAction `json:"actions"`
		Feeds   []PackageAction `json:"feeds"`
	}
	if err := json.Unmarshal(b, &lists); err != nil {
		return err
	}
	p.Actions, p.Feeds = lists.Actions, lists.Feeds
	return nil
}

// PackageSummary is an entry of a package list: Binding is nil for a plain package.
type PackageSummary struct {
	Namespace   string         `json:"namespace"`
	Name        string         `json:"name"`
	Version     string         `json:"version"`
	Publish     bool           `json:"publish"`
	Annotations gust.KeyValues `json:"annotations"`
	Updated     int64          `json:"updated"`
	Binding     *gust.Binding  `json:"-"`
}

// UnmarshalJSON reads binding, which is false or {namespace, name}.
func (s *PackageSummary) UnmarshalJSON(b []byte) error {
	type plain PackageSummary
	var v struct {
		plain
		Binding json.RawMessage `json:"binding"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = PackageSummary(v.plain)
	if len(v.Binding) > 0 && v.Binding[0] == '{' {
		var bd gust.Binding
		if err := json.Unmarshal(v.Binding, &bd); err != nil {
			return err
		}
		s.Binding = &bd
	}
	return nil
}

// PutPackage creates the package (or binding, with body.Binding) name, or
// updates it when overwrite is set.
func (c *Client) PutPackage(ctx context.Context, name string, body EntityPut, overwrite bool) (*gust.Package, error) {
	segs, err := c.entity("packages", name)
	if err != nil {
		return nil, err
	}
	var out gust.Package
	q := url.Values{"overwrite": {strconv.FormatBool(overwrite)}}
	if err := c.call(ctx, http.MethodPut, segs, q, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetPackage returns the package name ("pkg" or "/ns/pkg").
func (c *Client) GetPackage(ctx context.Context, name string) (*Package, error) {
	segs, err := c.packagePath(name)
	if err != nil {
		return nil, err
	}
	var out Package
	if err := c.call(ctx, http.MethodGet, segs, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListPackages returns the packages of namespace ns ("" for the client's);
// another namespace shows only its published ones.
func (c *Client) ListPackages(ctx context.Context, ns string, opts ListOptions) ([]PackageSummary, error) {
	if ns == "" {
		ns = c.ns
	}
	var out []PackageSummary
	err := c.call(ctx, http.MethodGet, []string{"namespaces", ns, "packages"}, opts.query(), nil, &out)
	return out, err
}

// DeletePackage deletes the package name; force deletes its actions first.
func (c *Client) DeletePackage(ctx context.Context, name string, force bool) error {
	segs, err := c.packagePath(name)
	if err != nil {
		return err
	}
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	return c.call(ctx, http.MethodDelete, segs, q, nil, nil)
}

// packagePath returns the segments of package name: "pkg" or "/ns/pkg".
func (c *Client) packagePath(name string) ([]string, error) {
	return c.entity("packages", name)
}
