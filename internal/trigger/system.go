package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/store"
)

// SystemNamespace holds the packages of the feeds Gust provides. It has
// no credentials: nobody logs into it, everybody reads its published
// packages.
const SystemNamespace = "whisk.system"

// systemPackages describes the feed packages and their feed actions.
var systemPackages = []struct {
	name, description string
	feeds             map[string]feedDoc
}{
	{"alarms", "Alarms and periodic utility", map[string]feedDoc{
		"alarm": {"Fire trigger when alarm occurs (cron)", []feedParam{
			{"cron", true, "UNIX crontab syntax for firing the trigger, in the time zone given by timezone (default UTC): 5 fields, or 6 with seconds first"},
			{"timezone", false, "IANA time zone of the cron schedule, e.g. Europe/Berlin; default UTC"},
			{"trigger_payload", false, "payload of each fire: an object, or a string sent as {\"payload\": string}"},
			{"startDate", false, "no fire before this date (epoch ms or ISO 8601)"},
			{"stopDate", false, "no fire after this date (epoch ms or ISO 8601)"},
		}},
		"interval": {"Fire trigger at specified interval", []feedParam{
			{"minutes", true, "interval in minutes, an integer greater than zero"},
			{"trigger_payload", false, "payload of each fire"},
			{"startDate", false, "first fire (epoch ms or ISO 8601); default one interval after creation"},
			{"stopDate", false, "no fire after this date"},
		}},
		"once": {"Fire trigger once when alarm occurs", []feedParam{
			{"date", true, "date of the fire (epoch ms or ISO 8601)"},
			{"trigger_payload", false, "payload of the fire"},
			{"deleteAfterFire", false, "false, true (delete the trigger after firing) or rules (and its rules)"},
		}},
	}},
	{"mqtt", "MQTT topics of devices connected to the embedded MQTT listener", map[string]feedDoc{
		"subscribe": {"Fire trigger for each message on an MQTT topic", []feedParam{
			{"topic", true, "topic filter starting with the namespace, e.g. guest/sensors/+/temp (wildcards + and #)"},
		}},
	}},
	{"nats", "NATS subjects", map[string]feedDoc{
		"subscribe": {"Fire trigger for each message on a NATS subject", []feedParam{
			{"subject", true, "subject starting with the namespace, e.g. guest.orders.> (wildcards * and >)"},
		}},
	}},
}

type feedDoc struct {
	description string
	params      []feedParam
}

// Provision creates or updates the system packages and their feed
// actions. Every node does it at start; a conflict means another node
// just did.
func Provision(ctx context.Context, entities *store.Entities, now int64) error {
	for _, sp := range systemPackages {
		pkg := gust.Package{
			Namespace: SystemNamespace, Name: sp.name, Version: "0.0.1", Publish: true,
			Parameters: gust.KeyValues{}, Annotations: gust.KeyValues{}.Set("description", sp.description), Updated: now,
		}
		if err := provisionEntity(ctx, entities, pkg.Path(), store.TypePackage, pkg, now); err != nil {
			return err
		}
		names := make([]string, 0, len(sp.feeds))
		for name := range sp.feeds {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			doc := sp.feeds[name]
			a := gust.Action{
				Namespace: SystemNamespace + "/" + sp.name, Name: name,
				Exec:       gust.Exec{Kind: gust.ExecFeed},
				Parameters: gust.KeyValues{}, Limits: gust.DefaultActionLimits(), Version: "0.0.1", Publish: true,
				Annotations: gust.KeyValues{}.Set("feed", true).Set("description", doc.description).
					Set("parameters", doc.params).Set("exec", gust.ExecFeed),
				Updated: now,
			}
			if err := provisionEntity(ctx, entities, a.Path(), store.TypeAction, a, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// provisionEntity writes doc at p unless an equal one is there.
func provisionEntity(ctx context.Context, entities *store.Entities, p gust.Path, typ string, doc any, now int64) error {
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	var rev uint64
	if cur, err := entities.Get(p); err == nil {
		if cur.Type == typ && sameIgnoringUpdated(cur.Doc, raw) {
			return nil
		}
		rev = cur.Revision
	}
	_, err = entities.Put(ctx, p, &store.Record{Type: typ, Doc: raw, Updated: now}, rev)
	if err != nil && gust.KindOf(err) != gust.KindConflict {
		return fmt.Errorf("provision %s: %w", p, err)
	}
	return nil
}

func sameIgnoringUpdated(a, b []byte) bool {
	var x, y map[string]json.RawMessage
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	delete(x, "updated")
	delete(y, "updated")
	ax, _ := json.Marshal(x)
	by, _ := json.Marshal(y)
	return bytes.Equal(ax, by)
}
