// Command native is the test fixture of the "native" and "go" kinds: an
// executable speaking OpenWhisk's actionloop protocol (one JSON line in on
// stdin, one result line out on fd 3). It is built once; each fixture is
// the binary with "\nmode=<name>" appended (ELF ignores trailing bytes),
// which it reads from its own file.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

var mode = readMode()

func readMode() string {
	b, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return "hello"
	}
	if i := bytes.LastIndex(b, []byte("\nmode=")); i >= 0 && len(b)-i < 40 {
		return string(b[i+6:])
	}
	return "hello"
}

var counter int

func main() {
	out := os.NewFile(3, "result")
	in := bufio.NewReaderSize(os.Stdin, 1<<20)
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return
		}
		var req struct {
			Value        map[string]any `json:"value"`
			ActivationID string         `json:"activation_id"`
		}
		if err := json.Unmarshal(line, &req); err != nil {
			fmt.Fprintf(out, "{\"error\":%q}\n", err.Error())
			continue
		}
		res := handle(req.Value, req.ActivationID)
		b, _ := json.Marshal(res)
		out.Write(append(b, '\n'))
	}
}

func handle(v map[string]any, id string) any {
	counter++
	switch mode {
	case "hello":
		name, _ := v["name"].(string)
		if name == "" {
			name = "stranger"
		}
		fmt.Println("hello from native")
		return map[string]any{"greeting": "Hello, " + name + "!", "activation_id": id, "counter": counter}
	case "logs":
		for i := range 1000 {
			fmt.Fprintf(os.Stderr, "log line %d\n", i)
		}
		return map[string]any{}
	case "error":
		return map[string]any{"error": "boom"}
	case "loop":
		for {
		}
	case "membomb":
		var chunks [][]byte
		for {
			c := make([]byte, 16<<20)
			for i := range c {
				c[i] = 1
			}
			chunks = append(chunks, c)
		}
	case "bigresult":
		return map[string]any{"data": strings.Repeat("x", 100000)}
	case "crash":
		if v["crash"] == true {
			os.Exit(3)
		}
		return map[string]any{"counter": counter}
	case "sleep":
		time.Sleep(time.Hour)
	case "counter": // sandboxtest's Counter fixture
		if v["crash"] == true {
			os.Exit(3)
		}
		if v["loop"] == true {
			for {
			}
		}
		return map[string]any{"count": counter}
	}
	return nil
}
