package gust

import "encoding/json"

// SystemLimits are the platform-wide bounds and per-namespace throttles,
// served by GET /namespaces/{ns}/limits.
type SystemLimits struct {
	InvocationsPerMinute  int
	ConcurrentInvocations int
	FiresPerMinute        int
	MinActionMemory       int // MB
	MaxActionMemory       int
	MinActionLogs         int // MB
	MaxActionLogs         int
	MinActionTimeout      int // ms
	MaxActionTimeout      int
	MinActionConcurrency  int
	MaxActionConcurrency  int
	MaxParameterSize      int // bytes, parameters or annotations of one entity
	MaxPayloadSize        int // bytes, invoke/fire body plus bound parameters
	MaxResultSize         int // bytes
	MaxCodeSize           int // bytes of exec
	MaxBodySize           int // bytes accepted at the HTTP layer
	MaxBlockingWait       int // ms
	SequenceMaxLength     int
}

// DefaultLimits are the defaults of OpenWhisk deployments (ansible and
// standalone), except memory, which allows up to 2 GB because wasm and
// process sandboxes bound it for real.
func DefaultLimits() SystemLimits {
	return SystemLimits{
		InvocationsPerMinute:  60,
		ConcurrentInvocations: 30,
		FiresPerMinute:        60,
		MinActionMemory:       128,
		MaxActionMemory:       2048,
		MinActionLogs:         0,
		MaxActionLogs:         10,
		MinActionTimeout:      100,
		MaxActionTimeout:      300000,
		MinActionConcurrency:  1,
		MaxActionConcurrency:  100, // several activations at once on one Node.js instance (process.Limits.Concurrency)
		MaxParameterSize:      1 << 20,
		MaxPayloadSize:        1 << 20,
		MaxResultSize:         1 << 20,
		MaxCodeSize:           48 << 20,
		MaxBodySize:           50 << 20,
		MaxBlockingWait:       60000,
		SequenceMaxLength:     50,
	}
}

// DefaultActionLimits are the limits of an action created without any.
func DefaultActionLimits() Limits {
	return Limits{Timeout: 60000, Memory: 256, Logs: 10, Concurrency: 1}
}

// MarshalJSON writes the OpenWhisk /limits document: numbers in MB and ms,
// ByteSize values as strings such as "1 MB".
func (l SystemLimits) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		InvocationsPerMinute  int    `json:"invocationsPerMinute"`
		ConcurrentInvocations int    `json:"concurrentInvocations"`
		FiresPerMinute        int    `json:"firesPerMinute"`
		MinActionMemory       int    `json:"minActionMemory"`
		MaxActionMemory       int    `json:"maxActionMemory"`
		MinActionLogs         int    `json:"minActionLogs"`
		MaxActionLogs         int    `json:"maxActionLogs"`
		MinActionTimeout      int    `json:"minActionTimeout"`
		MaxActionTimeout      int    `json:"maxActionTimeout"`
		MinActionConcurrency  int    `json:"minActionConcurrency"`
		MaxActionConcurrency  int    `json:"maxActionConcurrency"`
		MaxParameterSize      string `json:"maxParameterSize"`
		MaxPayloadSize        string `json:"maxPayloadSize"`
		MaxActionInstances    int    `json:"maxActionInstances"`
	}{
		l.InvocationsPerMinute, l.ConcurrentInvocations, l.FiresPerMinute,
		l.MinActionMemory, l.MaxActionMemory, l.MinActionLogs, l.MaxActionLogs,
		l.MinActionTimeout, l.MaxActionTimeout, l.MinActionConcurrency, l.MaxActionConcurrency,
		ByteSize(l.MaxParameterSize), ByteSize(l.MaxPayloadSize), l.ConcurrentInvocations,
	})
}

// ByteSize renders n bytes the way OpenWhisk's ByteSize does ("1 MB", "512 KB", "10 B").
func ByteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KB"
	default:
		return itoa(n) + " B"
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
