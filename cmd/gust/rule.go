package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gust-faas/gust/internal/client"
	"github.com/gust-faas/gust/internal/gust"
)

func ruleCommands() []*cliCommand {
	return []*cliCommand{
		{group: "rule", name: "create", args: "NAME TRIGGER ACTION", minArgs: 3, maxArgs: 3,
			flags:   []cliFlag{flagAnnotation, flagAnnotationFile},
			summary: "create a rule: firing TRIGGER runs ACTION (the rule starts active)", run: runRuleCreate},
		{group: "rule", name: "get", args: "NAME", minArgs: 1, maxArgs: 1, summary: "show a rule and its status", run: runRuleGet},
		{group: "rule", name: "list", summary: "list rules with their status, newest first",
			flags: []cliFlag{flagListLimit, flagListSkip}, run: runRuleList},
		{group: "rule", name: "delete", args: "NAME", minArgs: 1, maxArgs: 1, summary: "delete a rule", run: runRuleDelete},
		{group: "rule", name: "enable", args: "NAME", minArgs: 1, maxArgs: 1, summary: "make a rule active",
			run: func(ctx context.Context, c *cliCtx) error { return runRuleState(ctx, c, gust.RuleActive) }},
		{group: "rule", name: "disable", args: "NAME", minArgs: 1, maxArgs: 1, summary: "make a rule inactive",
			run: func(ctx context.Context, c *cliCtx) error { return runRuleState(ctx, c, gust.RuleInactive) }},
	}
}

// qualified makes a relative entity name explicit for the server, as wsk
// does: "a" is "/_/a", "pkg/a" is "/_/pkg/a".
func qualified(name string) string {
	if len(name) > 0 && name[0] == '/' {
		return name
	}
	return "/_/" + name
}

// sequenceExec is the exec of `action create NAME --sequence a,b`.
func sequenceExec(list string) *gust.Exec {
	var components []string
	for _, name := range strings.Split(list, ",") {
		if name = strings.TrimSpace(name); name != "" {
			components = append(components, qualified(name))
		}
	}
	return &gust.Exec{Kind: gust.ExecSequence, Components: components}
}

func runRuleCreate(ctx context.Context, c *cliCtx) error {
	name, trigger, action := c.args.pos[0], c.args.pos[1], c.args.pos[2]
	annotations, err := buildParams(c.args.strs("annotation-file"), c.args.pairs("annotation"))
	if err != nil {
		return err
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	var raw json.RawMessage
	body := client.RulePut{Trigger: qualified(trigger), Action: qualified(action), Annotations: annotations}
	if _, err := cl.WithBody(&raw).PutRule(ctx, name, body, false); err != nil {
		return fmt.Errorf("Unable to create rule '%s': %w", name, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, raw)
	}
	fmt.Fprintf(c.stdout, "ok: created rule %s\n", name)
	return nil
}

func runRuleGet(ctx context.Context, c *cliCtx) error {
	return runGetOne(ctx, c, "rule", func(ctx context.Context, cl *client.Client, name string) error {
		_, err := cl.GetRule(ctx, name)
		return err
	})
}

func runRuleList(ctx context.Context, c *cliCtx) error {
	return runListRows(ctx, c, "rules", func(ctx context.Context, cl *client.Client, o client.ListOptions) ([]gust.Rule, error) {
		return cl.ListRules(ctx, o)
	}, func(cl *client.Client, r *gust.Rule) string {
		// Lists carry no status (as in OpenWhisk): ask for each rule, as wsk does.
		status := "-"
		if full, err := cl.GetRule(ctx, "/"+r.Namespace+"/"+r.Name); err == nil {
			status = full.Status
		}
		return fmt.Sprintf("/%s/%s\t%s\t%s", r.Namespace, r.Name, shared(r.Publish), status)
	})
}

func runRuleDelete(ctx context.Context, c *cliCtx) error {
	return runDeleteOne(ctx, c, "rule", func(ctx context.Context, cl *client.Client, name string) error {
		return cl.DeleteRule(ctx, name)
	})
}

func runRuleState(ctx context.Context, c *cliCtx, status string) error {
	name := c.args.pos[0]
	cl, err := c.client()
	if err != nil {
		return err
	}
	verb, done := "enable", "enabled"
	if status == gust.RuleInactive {
		verb, done = "disable", "disabled"
	}
	if err := cl.SetRuleState(ctx, name, status); err != nil {
		return fmt.Errorf("Unable to %s rule '%s': %w", verb, name, err)
	}
	if c.jsonOut() {
		return printJSON(c.stdout, []byte(`{"status":"`+status+`"}`))
	}
	fmt.Fprintf(c.stdout, "ok: %s rule %s\n", done, name)
	return nil
}
