package sandbox

import "testing"

// The texts are spelled out here, not built from the functions: clients
// match on them, so a change must break this test.
func TestMessages(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{TimeoutMessage(300), "The action exceeded its time limits of 300 milliseconds (timeout of 300 ms exceeded)."},
		{MemoryMessage(64), "The action exhausted its memory and was aborted (memory limit of 64 MB exceeded)."},
		{TooLargeMessage(9, 7), "The action produced a response that exceeded the allowed length: 9 > 7 bytes."},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
