// Command goreactor is a Gust reactor in Go (build with -buildmode=c-shared).
//
// Input {"value": params, "env": {...}}. It returns
// {"greeting": "Hello, N!", "count": C, "activation_id": A} where C counts
// the calls this instance served (a global: it proves reuse) and A is the
// per-call __OW_ACTIVATION_ID, applied with os.Setenv. Parameters steer it:
// "error": E returns {"error": E}; "panic": true panics; "loop": true never
// returns; "sleep_ms": N sleeps first; "log": S prints S to stdout and
// stderr.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"
	"unsafe"
)

var (
	in, out []byte
	count   int
)

//go:wasmexport gust_alloc
func gustAlloc(size uint32) unsafe.Pointer {
	in = make([]byte, size)
	return unsafe.Pointer(unsafe.SliceData(in))
}

//go:wasmexport gust_handle
func gustHandle(n uint32) uint64 {
	var req struct {
		Value json.RawMessage   `json:"value"`
		Env   map[string]string `json:"env"`
	}
	if err := json.Unmarshal(in[:n], &req); err != nil {
		return reply(map[string]any{"error": "bad input: " + err.Error()})
	}
	for k, v := range req.Env {
		os.Setenv(k, v)
	}
	return reply(handle(req.Value))
}

func handle(raw json.RawMessage) any {
	var p struct {
		Name    string `json:"name"`
		Error   string `json:"error"`
		Panic   bool   `json:"panic"`
		Loop    bool   `json:"loop"`
		SleepMS int    `json:"sleep_ms"`
		Log     string `json:"log"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return map[string]any{"error": "bad parameters: " + err.Error()}
	}
	count++
	if p.Log != "" {
		fmt.Println(p.Log)
		fmt.Fprintln(os.Stderr, p.Log)
	}
	time.Sleep(time.Duration(p.SleepMS) * time.Millisecond)
	switch {
	case p.Panic:
		panic("asked to panic")
	case p.Loop:
		for {
		}
	case p.Error != "":
		return map[string]any{"error": p.Error}
	}
	if p.Name == "" {
		p.Name = "stranger"
	}
	return map[string]any{
		"greeting":      "Hello, " + p.Name + "!",
		"count":         count,
		"activation_id": os.Getenv("__OW_ACTIVATION_ID"),
	}
}

// reply encodes v into out, which stays valid until the next call.
func reply(v any) uint64 {
	out, _ = json.Marshal(v)
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))<<32 | uint64(len(out))
}

func main() {}
