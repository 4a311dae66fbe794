package gust

import (
	"strings"
	"unicode/utf8"
)

// MaxNameLength is the longest entity or namespace name.
const MaxNameLength = 256

// ValidateName checks an entity (or package, namespace) name against
// OpenWhisk's rule: first character a letter, digit or '_'; then letters,
// digits, '_', '@', '.', '&', '-' and spaces; not ending in a space; 1..256
// characters. what names the thing for the message ("action", "package").
func ValidateName(what, name string) error {
	if name == "" {
		return Errorf(KindInvalid, "The %s name is missing.", what)
	}
	if utf8.RuneCountInString(name) > MaxNameLength {
		return Errorf(KindInvalid, "The %s name is longer than %d characters.", what, MaxNameLength)
	}
	for i, r := range name {
		ok := isWord(r) || (i > 0 && strings.ContainsRune("@ .&-", r))
		if !ok {
			return Errorf(KindInvalid, "The %s name %q is not valid: it must start with a letter, digit or '_' and contain only letters, digits, spaces and '_', '@', '.', '&', '-'.", what, name)
		}
	}
	if strings.HasSuffix(name, " ") {
		return Errorf(KindInvalid, "The %s name %q is not valid: it must not end with a space.", what, name)
	}
	return nil
}

func isWord(r rune) bool {
	return r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// Path names an entity: the namespace that owns it, an optional package and its name.
type Path struct {
	Namespace string
	Package   string
	Name      string
}

// String returns the fully qualified name "/ns[/pkg]/name".
func (p Path) String() string {
	return "/" + p.Rel(true)
}

// Rel returns "ns[/pkg]/name" when withNS, else "[pkg/]name".
func (p Path) Rel(withNS bool) string {
	var b strings.Builder
	if withNS {
		b.WriteString(p.Namespace)
		b.WriteByte('/')
	}
	if p.Package != "" {
		b.WriteString(p.Package)
		b.WriteByte('/')
	}
	b.WriteString(p.Name)
	return b.String()
}

// EntityNamespace is the value of an entity's "namespace" field: "ns" or "ns/pkg".
func (p Path) EntityNamespace() string {
	if p.Package != "" {
		return p.Namespace + "/" + p.Package
	}
	return p.Namespace
}

// ParsePath parses a possibly fully qualified name as OpenWhisk does:
// "/ns/name", "/ns/pkg/name", "name" or "pkg/name" (relative names belong to
// defaultNS). "_" as namespace means defaultNS.
func ParsePath(s, defaultNS string) (Path, error) {
	if s == "" {
		return Path{}, Errorf(KindInvalid, "The name is missing.")
	}
	abs := strings.HasPrefix(s, "/")
	parts := strings.Split(strings.TrimPrefix(s, "/"), "/")
	var p Path
	switch {
	case abs && len(parts) == 2:
		p = Path{Namespace: parts[0], Name: parts[1]}
	case abs && len(parts) == 3:
		p = Path{Namespace: parts[0], Package: parts[1], Name: parts[2]}
	case !abs && len(parts) == 1:
		p = Path{Namespace: defaultNS, Name: parts[0]}
	case !abs && len(parts) == 2:
		p = Path{Namespace: defaultNS, Package: parts[0], Name: parts[1]}
	default:
		return Path{}, Errorf(KindInvalid, "The name %q is not a valid fully qualified name.", s)
	}
	if p.Namespace == "_" {
		p.Namespace = defaultNS
	}
	if err := ValidateName("namespace", p.Namespace); err != nil {
		return Path{}, err
	}
	if p.Package != "" {
		if err := ValidateName("package", p.Package); err != nil {
			return Path{}, err
		}
	}
	if err := ValidateName("entity", p.Name); err != nil {
		return Path{}, err
	}
	return p, nil
}
