package main

import (
	"context"
	"encoding/json"
	"fmt"
)

func runNamespaceList(ctx context.Context, c *cliCtx) error {
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	names, err := cl.WithBody(&raw).ListNamespaces(ctx)
	if err != nil {
		return fmt.Errorf("Unable to list namespaces: %w", err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintln(c.stdout, "namespaces")
	for _, n := range names {
		fmt.Fprintln(c.stdout, n)
	}
	return nil
}
