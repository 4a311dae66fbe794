// Command gohello is a Go WASI command: {"name": N} on stdin ->
// {"greeting": "Hello, N!", "activation_id": $__OW_ACTIVATION_ID} on stdout.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var params struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&params); err != nil {
		fmt.Fprintln(os.Stderr, "bad parameters:", err)
		os.Exit(1)
	}
	if params.Name == "" {
		params.Name = "stranger"
	}
	fmt.Fprintf(os.Stderr, "hello: greeting %s\n", params.Name)
	json.NewEncoder(os.Stdout).Encode(map[string]string{
		"greeting":      "Hello, " + params.Name + "!",
		"activation_id": os.Getenv("__OW_ACTIVATION_ID"),
	})
}
