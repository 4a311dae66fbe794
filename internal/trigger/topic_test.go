package trigger

import (
	"strings"
	"testing"
)

func TestTopicToSubject(t *testing.T) {
	tests := []struct {
		topic, subject string
		wildcards, ok  bool
	}{
		{"sensors/room1/temp", "sensors.room1.temp", false, true},
		{"a.b/c", "a//b.c", false, true},
		{"/a", "/.a", false, true},
		{"a/", "a./", false, true},
		{"a//b", "a./.b", false, true},
		{"guest/+/temp", "guest.*.temp", true, true},
		{"guest/#", "guest.>", true, true},
		{"guest/+/temp", "", false, false},
		{"guest/a+/temp", "", true, false},
		{"guest/#/x", "", true, false},
		{"a b", "", false, false},
		{"", "", false, false},
	}
	for _, tt := range tests {
		got, err := TopicToSubject(tt.topic, tt.wildcards)
		if (err == nil) != tt.ok || got != tt.subject {
			t.Errorf("TopicToSubject(%q) = %q, %v; want %q ok=%v", tt.topic, got, err, tt.subject, tt.ok)
		}
	}
	for _, ns := range []string{"act", "invoke", "$SYS", "a b"} {
		if _, err := NamespaceRoot(ns); err == nil {
			t.Errorf("namespace %q got event subjects", ns)
		}
	}
	if root, err := NamespaceRoot("guest"); err != nil || root != "guest" {
		t.Errorf("root of guest: %q %v", root, err)
	}
}

// FuzzTopicMapping checks that topic names survive the round trip through
// NATS subjects and that filters convert to valid subject filters.
func FuzzTopicMapping(f *testing.F) {
	for _, s := range []string{"a/b", "a.b/c", "/a", "a/", "a//b", "a/./b", "guest/+/t", "guest/#", "+", "#", "a/+/#"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, topic string) {
		if subject, err := TopicToSubject(topic, false); err == nil {
			if back := SubjectToTopic(subject); back != topic {
				t.Fatalf("%q -> %q -> %q", topic, subject, back)
			}
			if strings.ContainsAny(subject, " \t\r\n") {
				t.Fatalf("%q -> subject with whitespace %q", topic, subject)
			}
		}
		if filter, err := TopicToSubject(topic, true); err == nil {
			if strings.Count(filter, ">") > 1 || strings.Contains(filter, ">") && !strings.HasSuffix(filter, ">") {
				t.Fatalf("%q -> bad filter %q", topic, filter)
			}
		}
	})
}
