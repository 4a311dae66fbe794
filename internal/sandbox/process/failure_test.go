//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/sandbox"
)

// TestClassifyFailure: every path that ends a worker classifies with it,
// in one order: backend closing, the call's deadline, memory, exit, else
// the platform's.
func TestClassifyFailure(t *testing.T) {
	wrapped := func(err error) error { return fmt.Errorf("write: %w", err) }
	for _, tc := range []struct {
		name     string
		err      error
		oom      bool
		closed   bool
		want     failure
		platform error // the error wanted, when the failure is the platform's
	}{
		{"Timeout", errTimedOut, false, false, failTimeout, nil},
		{"TimeoutWrapped", wrapped(errTimedOut), false, false, failTimeout, nil},
		{"TimeoutBeatsMemory", errTimedOut, true, false, failTimeout, nil},
		{"Memory", errExited, true, false, failMemory, nil},
		{"MemoryBeatsOtherErrors", context.Canceled, true, false, failMemory, nil},
		{"Exited", errExited, false, false, failExited, nil},
		{"ExitedWrapped", wrapped(errExited), false, false, failExited, nil},
		{"ClosedBeatsAll", errTimedOut, true, true, 0, errClosed},
		{"ClosedOnExit", errExited, false, true, 0, errClosed},
		{"CallerGaveUp", context.Canceled, false, false, 0, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := classifyFailure(tc.err, tc.oom, tc.closed)
			if got != tc.want {
				t.Errorf("failure %d, want %d", got, tc.want)
			}
			switch {
			case tc.platform == nil && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.platform != nil && !errors.Is(err, tc.platform):
				t.Errorf("error %v, want %v", err, tc.platform)
			}
		})
	}
}

// TestFailedMessages: what a call gets for each failure, in its run and in
// its init.
func TestFailedMessages(t *testing.T) {
	f := &function{limits: sandbox.Limits{Timeout: 1500 * time.Millisecond, MemoryMB: 96}}
	for _, tc := range []struct {
		how      failure
		init     bool
		want     string
		timedOut bool
	}{
		{failTimeout, false, "The action exceeded its time limits of 1500 milliseconds (timeout of 1500 ms exceeded).", true},
		{failTimeout, true, "The action exceeded its time limits of 1500 milliseconds during initialization (timeout of 1500 ms exceeded).", true},
		{failMemory, false, "The action exhausted its memory and was aborted (memory limit of 96 MB exceeded).", false},
		{failMemory, true, "The action exhausted its memory and was aborted (memory limit of 96 MB exceeded).", false},
		{failExited, false, "The action did not produce a valid response and exited unexpectedly.", false},
		{failExited, true, "The action did not initialize and exited unexpectedly.", false},
	} {
		res := &sandbox.Result{}
		f.failed(res, tc.how, tc.init)
		if res.Status != gust.StatusDeveloperError || errorText(res) != tc.want || res.TimedOut != tc.timedOut {
			t.Errorf("failure %d, init %v: %v %q timedOut %v; want %q timedOut %v", tc.how, tc.init, res.Status, errorText(res), res.TimedOut, tc.want, tc.timedOut)
		}
	}
}
