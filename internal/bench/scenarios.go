package bench

import (
	"fmt"
	"slices"
	"strings"
)

// scenario is an entry of the catalogue.
type scenario struct {
	name  string
	about string
	// needs are the baselines measured with the scenario, so that its
	// ratios are always taken against a floor of the same run.
	needs []string
}

// catalogue lists every scenario in the order they run and are reported.
var catalogue = []scenario{
	{name: "floor-http", about: "bare net/http no-op server answering a small JSON POST on loopback"},
	{name: "floor-nats", about: "NATS request-reply round trip on the embedded server"},
	{name: "floor-exec", about: "fork+exec+wait of python3 -c pass and node -e 0 (empty environment), and /bin/true"},
	{name: "invoke-wasm-c", needs: []string{"floor-http"}, about: "warm blocking invoke of a no-op C command module (fresh instance per call) via the REST API"},
	{name: "invoke-wasm-reactor", needs: []string{"floor-http"}, about: "warm blocking invoke of a no-op Go reactor module (instance reused) via the REST API"},
	{name: "invoke-python", needs: []string{"floor-http"}, about: "warm blocking invoke of a no-op python:3 action (a warm worker process) via the REST API"},
	{name: "invoke-nodejs", needs: []string{"floor-http"}, about: "warm blocking invoke of a no-op nodejs:20 action (a warm worker process) via the REST API"},
	{name: "web-action", needs: []string{"floor-http"}, about: "GET of a no-op C web action (.json, no credentials): a fresh instance per call"},
	{name: "web-action-reactor", needs: []string{"floor-http"}, about: "GET of a no-op Go reactor web action (.json, no credentials): a warm instance reused"},
	{name: "async-invoke", needs: []string{"floor-http"}, about: "non-blocking invokes: accept latency and rate, completion rate, accept→record latency"},
	{name: "cold-wasm", needs: []string{"floor-http", "floor-exec"}, about: "fresh-instance cost in the sandbox, and the first invoke after create via the REST API"},
	{name: "cold-process", needs: []string{"floor-exec"}, about: "first invoke after create of python:3 and nodejs:20 actions via the REST API, beside fork+exec of the same interpreter"},
	{name: "activation-store", needs: []string{"floor-nats"}, about: "activation records: ingest rate, get by id and newest-50 list at 10k and 100k records retained"},
	{name: "trigger-fire", needs: []string{"floor-http"}, about: "fire of a trigger with a rule to a warm no-op Go reactor (202) at each concurrency beside a non-blocking invoke of the action, and fire→record of the rule's action beside invoke→record, one at a time"},
	{name: "mqtt-publish", about: "MQTT publish (paho, QoS 0, guest's UUID and key) → mqtt/subscribe feed → trigger → rule → warm Go reactor / python:3 action → record readable, one event at a time, beside NATS's own MQTT publish → NATS subscriber"},
	{name: "sequence", needs: []string{"floor-http"}, about: "blocking invoke of sequences of 1 and 5 no-op Go reactor steps beside one of the step alone; the overhead per step is (p50 of 5 − p50 of 1)/4"},
	{name: "async-burst", needs: []string{"floor-http"}, about: "1000 non-blocking invokes of a no-op Go reactor at once (1000 goroutines, one request each, on kept-alive connections): accept rate, completion rate and accept→record (until the record reaches the store), beside the same burst to floor-http"},
	{name: "placement", needs: []string{"floor-http"}, about: "blocking invoke of a no-op Go reactor on a node with 2 invokers: home on the API's invoker (direct call) vs on the other (NATS request-reply), beside the single-invoker node"},
	{name: "density", about: "resident memory per idle warm instance (wasm Go reactor, wasm C, python:3, nodejs:20) and how many fit in 1 GiB, beside a bare process of the interpreter asleep"},
	{name: "trace-replay", about: "the Azure Functions 2021 sample replayed against the keep-alive policies fixed:10m and hybrid: cold-start share and idle memory·time"},
}

func lookup(name string) (scenario, bool) {
	i := slices.IndexFunc(catalogue, func(s scenario) bool { return s.name == name })
	if i < 0 {
		return scenario{}, false
	}
	return catalogue[i], true
}

// selectScenarios returns the scenarios to run for the names asked for,
// with the baselines they need, in catalogue order. No names means all.
func selectScenarios(names []string) ([]scenario, error) {
	if len(names) == 0 {
		return slices.Clone(catalogue), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		s, ok := lookup(n)
		if !ok {
			return nil, fmt.Errorf("unknown scenario %q; have %s", n, strings.Join(scenarioNames(), ", "))
		}
		want[n] = true
		for _, b := range s.needs {
			want[b] = true
		}
	}
	var out []scenario
	for _, s := range catalogue {
		if want[s.name] {
			out = append(out, s)
		}
	}
	return out, nil
}

func scenarioNames() []string {
	names := make([]string, len(catalogue))
	for i, s := range catalogue {
		names[i] = s.name
	}
	return names
}
