// Package store keeps Gust's state on JetStream: entities and API keys in KV
// buckets read through caches that watches keep current, large code in the
// object store, and activation records in a stream.
package store

import (
	"strings"

	"github.com/gust-faas/gust/internal/gust"
)

// token escapes s into one NATS subject token: letters, digits, '_' and '-'
// stay; every other byte becomes "=XX". Entity names may hold spaces, dots,
// '@' and '&', which subjects and KV keys cannot carry raw.
func token(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if !plain(s[i]) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// untoken reverses token.
func untoken(t string) string {
	if !strings.Contains(t, "=") {
		return t
	}
	var b strings.Builder
	for i := 0; i < len(t); i++ {
		if t[i] == '=' && i+2 < len(t) {
			b.WriteByte(unhex(t[i+1])<<4 | unhex(t[i+2]))
			i += 2
			continue
		}
		b.WriteByte(t[i])
	}
	return b.String()
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

func plain(c byte) bool {
	return c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// entityKey is the KV key of an entity: all kinds of one namespace share
// one key space, as in OpenWhisk; actions in a package sit one level down.
func entityKey(p gust.Path) string {
	if p.Package != "" {
		return token(p.Namespace) + "." + token(p.Package) + "." + token(p.Name)
	}
	return token(p.Namespace) + "." + token(p.Name)
}

// pathOfKey reverses entityKey.
func pathOfKey(key string) (gust.Path, bool) {
	parts := strings.Split(key, ".")
	switch len(parts) {
	case 2:
		return gust.Path{Namespace: untoken(parts[0]), Name: untoken(parts[1])}, true
	case 3:
		return gust.Path{Namespace: untoken(parts[0]), Package: untoken(parts[1]), Name: untoken(parts[2])}, true
	}
	return gust.Path{}, false
}

// Token escapes s into one subject token, for other packages that key
// subjects by entity names.
func Token(s string) string { return token(s) }
