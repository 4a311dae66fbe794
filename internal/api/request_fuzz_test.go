package api

import (
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
)

// FuzzPageParams feeds arbitrary list query strings to pageParams: it
// never panics, refuses bad values with a 400, and what it accepts is in
// range and means what the query said.
func FuzzPageParams(f *testing.F) {
	for _, q := range []string{
		"", "limit=0", "limit=1", "limit=200", "limit=201", "limit=-1", "limit=x", "limit=%2B5",
		"skip=0", "skip=-1", "skip=x", "skip=9223372036854775807", "skip=99999999999999999999",
		"count=true", "count=false", "count=1", "count=yes", "limit=30&skip=10&count=true",
		"limit=&skip=", "limit=1e3", "limit= 5", "limit=5&limit=300", "skip=%00",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		p, err := pageParams(q, "actions")
		if err != nil {
			if gust.KindOf(err) != gust.KindInvalid {
				t.Fatalf("pageParams(%q): error of kind %v, want invalid: %v", raw, gust.KindOf(err), err)
			}
			if msg := gust.MessageOf(err); !strings.HasSuffix(msg, ".") || !strings.Contains(msg, "actions") && !strings.Contains(msg, "count") {
				t.Fatalf("pageParams(%q): message %q", raw, msg)
			}
			return
		}
		if p.limit < 1 || p.limit > 200 {
			t.Fatalf("pageParams(%q): limit %d outside 1..200", raw, p.limit)
		}
		if p.skip < 0 {
			t.Fatalf("pageParams(%q): skip %d", raw, p.skip)
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("pageParams(%q) accepted limit %q", raw, v)
			}
			if want := map[bool]int{true: 200, false: n}[n == 0]; p.limit != want {
				t.Fatalf("pageParams(%q): limit %d, want %d", raw, p.limit, want)
			}
		} else if p.limit != 30 {
			t.Fatalf("pageParams(%q): default limit %d, want 30", raw, p.limit)
		}
		if v := q.Get("skip"); v != "" {
			if n, err := strconv.Atoi(v); err != nil || n != p.skip {
				t.Fatalf("pageParams(%q): skip %d from %q", raw, p.skip, v)
			}
		}
		if c := q.Get("count"); p.count != (c != "" && mustBool(c)) {
			t.Fatalf("pageParams(%q): count %v", raw, p.count)
		}
	})
}

func mustBool(s string) bool {
	b, _ := strconv.ParseBool(s)
	return b
}

// FuzzEntityPath feeds arbitrary {rest...} segments of an entity route to
// entityPath: accepted paths are valid names that render back to the input;
// everything else is a 400 or a 404.
func FuzzEntityPath(f *testing.F) {
	for _, s := range []string{
		"hello", "pkg/hello", "a/b/c", "", "/", "pkg/", "/hello", "-x", "x ", "a b", "a@b.c&d-e",
		strings.Repeat("n", 256), strings.Repeat("n", 257), "é", "a\x00b", "pkg/-x", "_/_",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rest string) {
		p, err := entityPath("guest", rest)
		if err != nil {
			if k := gust.KindOf(err); k != gust.KindInvalid && k != gust.KindNotFound {
				t.Fatalf("entityPath(%q): error of kind %v: %v", rest, k, err)
			}
			return
		}
		if p.Namespace != "guest" {
			t.Fatalf("entityPath(%q): namespace %q", rest, p.Namespace)
		}
		if gust.ValidateName("entity", p.Name) != nil || (p.Package != "" && gust.ValidateName("package", p.Package) != nil) {
			t.Fatalf("entityPath(%q) accepted invalid names %+v", rest, p)
		}
		if got := p.Rel(false); got != rest {
			t.Fatalf("entityPath(%q) = %+v, which renders as %q", rest, p, got)
		}
		// The path is also a valid fully qualified name.
		q, err := gust.ParsePath(p.String(), "other")
		if err != nil || q != p {
			t.Fatalf("entityPath(%q) = %+v; ParsePath(%q) = %+v, %v", rest, p, p.String(), q, err)
		}
	})
}

// FuzzInvokeQuery: any invoke query string is either refused with a 400
// or gives booleans and a wait within 1 ms..the blocking limit, the
// timeout it named.
func FuzzInvokeQuery(f *testing.F) {
	for _, q := range []string{
		"", "blocking=true", "blocking=true&result=true", "result=1", "blocking=yes", "timeout=1", "timeout=60000",
		"timeout=60001", "timeout=0", "timeout=-5", "timeout=x", "timeout=1e3", "timeout=99999999999999999999",
		"blocking=true&timeout=500&result=false", "blocking=&result=",
	} {
		f.Add(q)
	}
	const maxWait = 60000
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		blocking, result, wait, err := invokeQuery(q, maxWait)
		if err != nil {
			if gust.KindOf(err) != gust.KindInvalid {
				t.Fatalf("invokeQuery(%q): error of kind %v: %v", raw, gust.KindOf(err), err)
			}
			return
		}
		if wait < time.Millisecond || wait > maxWait*time.Millisecond {
			t.Fatalf("invokeQuery(%q): wait %v", raw, wait)
		}
		if v := q.Get("timeout"); v != "" {
			if n, _ := strconv.Atoi(v); time.Duration(n)*time.Millisecond != wait {
				t.Fatalf("invokeQuery(%q): wait %v from timeout %q", raw, wait, v)
			}
		}
		if b, _ := strconv.ParseBool(q.Get("blocking")); b != blocking {
			t.Fatalf("invokeQuery(%q): blocking %v", raw, blocking)
		}
		if r, _ := strconv.ParseBool(q.Get("result")); r != result {
			t.Fatalf("invokeQuery(%q): result %v", raw, result)
		}
	})
}

// FuzzActivationQuery: an activation list query is refused with a 400 or
// gives times that are non-negative epoch ms as given, and a name of one
// or two valid parts.
func FuzzActivationQuery(f *testing.F) {
	for _, q := range []string{
		"", "since=0", "since=1700000000000&upto=1800000000000", "since=-1", "upto=x", "since=1.5",
		"name=hello", "name=pkg/hello", "name=a/b/c", "name=/x", "name=%00", "docs=true", "docs=true&count=true",
		"count=true&name=p/a&since=5", "limit=5&skip=2&docs=false",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		aq, err := activationQuery(q)
		if err != nil {
			if gust.KindOf(err) != gust.KindInvalid {
				t.Fatalf("activationQuery(%q): error of kind %v: %v", raw, gust.KindOf(err), err)
			}
			return
		}
		for _, p := range []struct {
			name string
			got  int64
		}{{"since", aq.opt.Since}, {"upto", aq.opt.Upto}} {
			want := int64(0)
			if v := q.Get(p.name); v != "" {
				want, _ = strconv.ParseInt(v, 10, 64)
			}
			if p.got < 0 || p.got != want {
				t.Fatalf("activationQuery(%q): %s %d, want %d", raw, p.name, p.got, want)
			}
		}
		if aq.opt.Name != q.Get("name") || strings.Count(aq.opt.Name, "/") > 1 {
			t.Fatalf("activationQuery(%q): name %q", raw, aq.opt.Name)
		}
		for _, part := range strings.Split(aq.opt.Name, "/") {
			if aq.opt.Name != "" && gust.ValidateName("action", part) != nil {
				t.Fatalf("activationQuery(%q): accepted name part %q", raw, part)
			}
		}
		if aq.docs && aq.page.count {
			t.Fatalf("activationQuery(%q): docs with count", raw)
		}
		if aq.opt.Limit != aq.page.limit || aq.opt.Skip != aq.page.skip {
			t.Fatalf("activationQuery(%q): paging %+v vs %+v", raw, aq.opt, aq.page)
		}
	})
}
