package trigger

import (
	"fmt"
	"strings"
)

// MQTT topics and NATS subjects, mapped as the embedded server's MQTT
// listener maps them (shared/reference/nats.md §5), so that a feed's
// subscription sees exactly what devices publish:
//
//	/ between levels  -> .      a.b in a level -> a//b
//	leading /         -> /.     empty level    -> ./ (a//b -> a./.b)
//	+                 -> *      #              -> >
//
// Whitespace, * and > cannot be carried. Events are scoped by namespace: the first
// level of a topic (token of a subject) is the namespace, so a tenant
// subscribes and publishes only under its own name.

// TopicToSubject converts an MQTT topic name (wildcards false) or filter
// (wildcards true) to a NATS subject.
func TopicToSubject(topic string, wildcards bool) (string, error) {
	if topic == "" {
		return "", fmt.Errorf("empty topic")
	}
	levels := strings.Split(topic, "/")
	for i, l := range levels {
		switch {
		case strings.ContainsAny(l, " \t\n\r\f\x00\x7f"):
			return "", fmt.Errorf("topic %q has whitespace or control characters", topic)
		case strings.ContainsAny(l, "*>"):
			// Literal in MQTT, wildcards in NATS: a feed would match
			// other topics than the device's.
			return "", fmt.Errorf("topic %q has * or >, which NATS subjects cannot carry", topic)
		case !wildcards && strings.ContainsAny(l, "+#"):
			return "", fmt.Errorf("wildcards are not allowed in topic %q", topic)
		case strings.ContainsAny(l, "+#") && l != "+" && l != "#":
			return "", fmt.Errorf("a wildcard must fill its level in topic %q", topic)
		case l == "#" && i != len(levels)-1:
			return "", fmt.Errorf("# must be the last level of topic %q", topic)
		}
	}
	var b strings.Builder
	end := len(topic) - 1
	for i := 0; i < len(topic); i++ {
		switch c := topic[i]; c {
		case '/':
			s := b.String()
			switch {
			case i == 0 || strings.HasSuffix(s, "."):
				b.WriteString("/.")
			case i == end || topic[i+1] == '/':
				b.WriteString("./")
			default:
				b.WriteByte('.')
			}
		case '.':
			b.WriteString("//")
		case '+':
			b.WriteByte('*')
		case '#':
			b.WriteByte('>')
		default:
			b.WriteByte(c)
		}
	}
	s := b.String()
	if strings.HasSuffix(s, ".") {
		s += "/"
	}
	return s, nil
}

// SubjectToTopic converts the subject of a message published by MQTT
// back to its topic.
func SubjectToTopic(subject string) string {
	var b strings.Builder
	end := len(subject) - 1
	for i := 0; i < len(subject); i++ {
		switch c := subject[i]; c {
		case '/':
			if i < end {
				switch subject[i+1] {
				case '.':
					b.WriteByte('/')
					i++
				case '/':
					b.WriteByte('.')
					i++
				}
			}
		case '.':
			b.WriteByte('/')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// ValidSubject reports whether s is a NATS subject (a filter when
// wildcards): non-empty tokens without whitespace, * and > filling their
// token, > last.
func ValidSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "" || strings.ContainsAny(t, " \t\n\r\f\x00\x7f"):
			return false
		case !wildcards && strings.ContainsAny(t, "*>"):
			return false
		case strings.ContainsAny(t, "*>") && t != "*" && t != ">":
			return false
		case t == ">" && i != len(tokens)-1:
			return false
		}
	}
	return true
}

// reservedRoots are the first subject tokens of Gust's own traffic
// (activation records, the work queue, dead letters, invokers) and the
// server's; a namespace with such a name has no event subjects, or a feed
// could read another tenant's records.
var reservedRoots = map[string]bool{"act": true, "invoke": true, "dlq": true, "gust": true, "floor": true, "_INBOX": true}

// NamespaceRoot returns the first token of namespace ns's event subjects
// (its name as an MQTT topic level).
func NamespaceRoot(ns string) (string, error) {
	root, err := TopicToSubject(ns, false)
	if err != nil || strings.Contains(root, ".") || reservedRoots[root] || strings.HasPrefix(root, "$") {
		return "", fmt.Errorf("the namespace %q cannot have event subjects", ns)
	}
	return root, nil
}

// scoped reports whether subject (a filter) lies in the namespace's own
// subjects: its first token is the root, literally.
func scoped(subject, root string) bool {
	first, _, _ := strings.Cut(subject, ".")
	return first == root
}
