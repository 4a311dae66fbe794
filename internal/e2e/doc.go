// Package e2e holds Gust's end-to-end tests of the core REST API. Each test
// starts a real node in-process with gusttest (embedded NATS JetStream,
// wazero, the API on 127.0.0.1:0, a temporary data directory) and talks to
// it over real HTTP: through Apache's openwhisk-client-go where OpenWhisk
// clients would, and with raw net/http for the protocol edges a client
// hides (status codes, headers, error bodies, limits). Actions are the
// WebAssembly fixtures that wasmtest builds from source.
//
// What is where:
//
//	actions_test.go      create, update (merge, version bump), get, list, count, delete; entity names
//	invoke_test.go       blocking, result-only, non-blocking and outlived invokes; error statuses; cold and warm starts
//	activations_test.go  activation list filters and paging, count, get, logs, result; read-your-writes
//	protocol_test.go     auth, request ids, routing errors, CORS, "_", validation messages, body limits
//	isolation_test.go    a second namespace sees and touches nothing of guest's
//	limits_test.go       the wasm sandbox's time, memory, log and result limits as the API reports them
//	restart_test.go      persistence across restarts, the data-directory lock, graceful shutdown
//	compile_test.go      modules are compiled when an action is written, not on its first invoke
//	fuzz_test.go         FuzzActionPut, FuzzInvokeBody, FuzzAuthorization against a real node
//
// Tests synchronise by polling with deadlines, never by sleeping, and
// assert no timings. The fuzz targets start one node per fuzz process:
//
//	go test ./internal/e2e -run '^$' -fuzz '^FuzzActionPut$' -fuzztime 30s
//
// The package has only tests; this file makes the directory a package.
package e2e
