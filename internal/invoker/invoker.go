// Package invoker runs activations: it keeps prepared functions of each
// sandbox backend, runs one call, enforces result limits and builds the
// activation record.
package invoker

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gust-faas/gust/internal/gust"
	"github.com/gust-faas/gust/internal/keepalive"
	"github.com/gust-faas/gust/internal/metrics"
	"github.com/gust-faas/gust/internal/sandbox"
)

// Config tunes an invoker.
type Config struct {
	Backends      []sandbox.Backend
	MaxFunctions  int // prepared functions kept (LRU); default 512
	MaxResultSize int // bytes; default 1 MB
	// MemoryMB is the memory the activations running here may reserve in
	// all (each reserves its action's memory limit); default 2048.
	MemoryMB int
	// KeepAlive decides how long idle functions stay prepared (with their
	// warm instances); default a fixed 10 minutes, as OpenWhisk.
	KeepAlive keepalive.Policy
	// SweepEvery is how often idle functions are checked; default 1s.
	SweepEvery time.Duration
	// ID names the invoker in activation annotations ("invoker").
	ID      string
	Metrics *metrics.Registry // optional
	Logger  *slog.Logger
}

// Invoker runs activations on its sandbox backends.
type Invoker struct {
	backends  map[string]sandbox.Backend // by kind, the kinds that can run here
	all       []sandbox.Backend
	maxFuncs  int
	maxResult int
	log       *slog.Logger

	mu    sync.Mutex
	funcs map[string]*list.Element // prepared functions by key
	lru   *list.List               // of *entry, most recent first

	inflight sync.WaitGroup
	capacity *capacity
	id       string
	m        invokerMetrics
	policy   keepalive.Policy
	plans    map[string]*prewarmPlan // functions unloaded until their pre-warm time
	// tickets counts, per function key, memory reserved by Admit for a
	// call that may start an instance; the function's Budget takes it.
	tickets map[string]int
	stop    chan struct{}
	swept   sync.WaitGroup
}

// invokerMetrics are the invoker's telemetry series.
type invokerMetrics struct {
	activations metrics.Counter // by namespace, action, start (cold/prewarmed/warm), status
	waitMs      metrics.Counter // queue wait, summed, by namespace and action
	runMs       metrics.Counter // run time, summed, by namespace and action
	memoryUsed  metrics.Gauge   // MB reserved, by invoker
	running     metrics.Gauge   // activations running, by invoker
	evictions   metrics.Counter // prepared functions dropped from the cache, by invoker
	unloads     metrics.Counter // functions closed by the keep-alive policy, by invoker
	prewarms    metrics.Counter // functions prepared ahead of an expected call, by invoker
	instances   metrics.Gauge   // live instances, by invoker
	trims       metrics.Counter // idle instances closed, by invoker and why (keep-alive, room)
}

type entry struct {
	key   string
	ready chan struct{} // closed when fn/err are set
	fn    sandbox.Function
	err   error

	// For the memory budget, guarded by Invoker.mu.
	instances int // live instances, each holding the action's memory
	claims    int // admitted calls counting on an idle instance

	// For keep-alive, guarded by Invoker.mu.
	action   *gust.Action
	digest   string
	code     func(context.Context) ([]byte, error)
	busy     int                // calls in progress
	lastEnd  time.Time          // end of the latest call (or preparation)
	decision keepalive.Decision // what the policy said after it
}

// New returns an invoker over the given backends.
func New(cfg Config) *Invoker {
	inv := &Invoker{
		backends:  map[string]sandbox.Backend{},
		maxFuncs:  cfg.MaxFunctions,
		maxResult: cfg.MaxResultSize,
		log:       cfg.Logger,
		funcs:     map[string]*list.Element{},
		lru:       list.New(),
	}
	if inv.maxFuncs <= 0 {
		inv.maxFuncs = 512
	}
	if inv.maxResult <= 0 {
		inv.maxResult = 1 << 20
	}
	if inv.log == nil {
		inv.log = slog.New(slog.DiscardHandler)
	}
	if cfg.MemoryMB <= 0 {
		cfg.MemoryMB = 2048
	}
	inv.capacity = newCapacity(cfg.MemoryMB)
	inv.capacity.reclaim = inv.reclaim
	inv.tickets = map[string]int{}
	inv.id = cfg.ID
	reg := cfg.Metrics
	if reg == nil {
		reg = metrics.New()
	}
	inv.m = invokerMetrics{
		activations: reg.Counter("gust_activations_total", "Activations run, by how their instance started and how they ended.", "namespace", "action", "start", "status"),
		waitMs:      reg.Counter("gust_activation_wait_milliseconds_total", "Time activations waited before running (divide by gust_activations_total for the mean).", "namespace", "action"),
		runMs:       reg.Counter("gust_activation_run_milliseconds_total", "Time activations ran.", "namespace", "action"),
		memoryUsed:  reg.Gauge("gust_invoker_memory_reserved_mb", "Memory held by live instances (busy or idle) and by calls about to start one.", "invoker"),
		instances:   reg.Gauge("gust_invoker_instances", "Live instances (busy or idle) of the invoker's functions.", "invoker"),
		trims:       reg.Counter("gust_invoker_instance_trims_total", "Idle instances closed: kept alive long enough, or closed to make room.", "invoker", "why"),
		running:     reg.Gauge("gust_invoker_activations_running", "Activations running now.", "invoker"),
		evictions:   reg.Counter("gust_invoker_function_evictions_total", "Prepared functions evicted from the invoker's cache.", "invoker"),
		unloads:     reg.Counter("gust_invoker_keepalive_unloads_total", "Idle functions closed by the keep-alive policy (scale to zero).", "invoker"),
		prewarms:    reg.Counter("gust_invoker_prewarms_total", "Functions prepared again before an expected call.", "invoker"),
	}
	inv.capacity.changed = func(used int) { inv.m.memoryUsed.Set(float64(used), inv.id) }
	inv.all = cfg.Backends
	for _, b := range cfg.Backends {
		for _, k := range b.Kinds() {
			inv.backends[k] = b
		}
	}
	inv.policy = cfg.KeepAlive
	if inv.policy == nil {
		inv.policy = keepalive.Fixed{KeepAlive: 10 * time.Minute}
	}
	inv.plans = map[string]*prewarmPlan{}
	inv.stop = make(chan struct{})
	every := cfg.SweepEvery
	if every <= 0 {
		every = time.Second
	}
	inv.swept.Add(1)
	go inv.sweeper(every)
	return inv
}

// Kinds lists the exec kinds this invoker can run.
func (inv *Invoker) Kinds() []string {
	out := make([]string, 0, len(inv.backends))
	for k := range inv.backends {
		out = append(out, k)
	}
	return out
}

// Runtimes lists every kind the backends know, with its interpreter and,
// for kinds that cannot run here, why.
func (inv *Invoker) Runtimes() []sandbox.RuntimeInfo {
	var out []sandbox.RuntimeInfo
	for _, b := range inv.all {
		if l, ok := b.(sandbox.RuntimeLister); ok {
			out = append(out, l.Runtimes()...)
			continue
		}
		for _, kind := range b.Kinds() {
			out = append(out, sandbox.RuntimeInfo{Kind: kind, Available: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kind < out[j].Kind })
	return out
}

// Supports reports whether kind can run here.
func (inv *Invoker) Supports(kind string) bool {
	_, ok := inv.backends[kind]
	return ok
}

// Job is one activation to run.
type Job struct {
	ActivationID string
	Namespace    string // the invoking namespace (records belong to it)
	Subject      string
	Action       *gust.Action // resolved action (code may be empty when Code is set)
	Digest       string       // hex SHA-256 of the decoded code
	Code         func(ctx context.Context) ([]byte, error)
	Params       json.RawMessage // merged parameters, a JSON object
	APIKey       string          // "uuid:key" handed to the function when it asked for it
	Received     time.Time       // when the platform accepted the request
	Cause        string          // id of the activation that caused this one: its sequence's or its trigger's
	CausedBy     string          // the causedBy annotation: "sequence" for a sequence's component
	Binding      string          // "ns/binding" when invoked through a package binding

	claim func() // ends Admit's claim on an idle instance (once; safe to call again); nil: none
}

func specLimits(l gust.Limits, maxResult int) sandbox.Limits {
	return sandbox.Limits{
		MemoryMB:    l.Memory,
		Timeout:     time.Duration(l.Timeout) * time.Millisecond,
		LogBytes:    l.Logs << 20,
		ResultBytes: maxResult,
		Concurrency: l.Concurrency,
	}
}

// appendFuncKey appends the key of a's prepared function: the action
// itself and what its sandbox depends on. The action's path comes first:
// instances keep state between calls (a reactor's globals, a worker's
// memory, a zygote's /tmp), so two actions never share them, even with the
// same code and limits, and least of all across namespaces. One action per
// function also keeps the entry's keep-alive history (policyKey) that of
// every call it serves.
func appendFuncKey(b []byte, a *gust.Action, digest string) []byte {
	l := a.Limits
	b = append(b, a.Namespace...) // "ns[/pkg]"
	b = append(b, '/')
	b = append(b, a.Name...)
	b = append(b, '|')
	b = append(b, a.Exec.Kind...)
	b = append(b, '|')
	b = append(b, digest...)
	b = append(b, '|')
	b = append(b, a.Exec.Main...)
	for _, n := range [...]int{l.Memory, l.Timeout, l.Logs, l.Concurrency} {
		b = append(b, '|')
		b = strconv.AppendInt(b, int64(n), 10)
	}
	for _, p := range a.Parameters {
		if p.Init { // part of the instances' environment
			b = append(b, '|')
			b = append(b, p.Key...)
			b = append(b, '=')
			b = append(b, p.Value...)
		}
	}
	if raw, ok := a.Annotations.Get(sandbox.DirsAnnotation); ok {
		b = append(b, '|') // the granted directories are mounted in the sandbox
		b = append(b, raw...)
	}
	return b
}

// initEnv returns a's init parameters (OpenWhisk's "init": true) as the
// environment of its instances: strings as they are, other JSON as text.
// The API refuses parameters that cannot be environment variables; one
// stored before it did is the developer's error, not the platform's.
func initEnv(a *gust.Action) (map[string]string, error) {
	var env map[string]string
	for _, p := range a.Parameters {
		if !p.Init {
			continue
		}
		v, err := p.EnvValue()
		if err != nil {
			return nil, err
		}
		if env == nil {
			env = map[string]string{}
		}
		env[p.Key] = v
	}
	return env, nil
}

// actionDirs reads the host directories a asks for.
func actionDirs(a *gust.Action) ([]string, error) {
	raw, ok := a.Annotations.Get(sandbox.DirsAnnotation)
	if !ok {
		return nil, nil
	}
	var dirs []string
	if err := json.Unmarshal(raw, &dirs); err != nil {
		return nil, gust.Errorf(gust.KindInvalid, "The annotation %s must be a list of directory names.", sandbox.DirsAnnotation)
	}
	return dirs, nil
}

// Prepare validates and compiles code for kind, as an action is created, so
// a bad module is refused at once and the first invoke is not slowed by
// compilation.
func (inv *Invoker) Prepare(ctx context.Context, a *gust.Action, digest string, code []byte) error {
	_, err := inv.function(ctx, a, digest, func(context.Context) ([]byte, error) { return code, nil }, false)
	return err
}

// function returns the prepared function for a, preparing it once even when
// many calls ask at the same time.
// With use, the entry is marked busy (under the same lock that found it, so
// the sweeper cannot close it in between); the caller must mark it idle.
func (inv *Invoker) function(ctx context.Context, a *gust.Action, digest string, code func(context.Context) ([]byte, error), use bool) (*entry, error) {
	b, ok := inv.backends[a.Exec.Kind]
	if !ok {
		return nil, gust.Errorf(gust.KindInvalid, "The specified runtime '%s' is not available on this invoker.", a.Exec.Kind)
	}
	var kb [192]byte
	kbuf := appendFuncKey(kb[:0], a, digest)
	inv.mu.Lock()
	if el, ok := inv.funcs[string(kbuf)]; ok { // no allocation for the look-up
		inv.lru.MoveToFront(el)
		e := el.Value.(*entry)
		if use {
			e.busy++
		}
		inv.mu.Unlock()
		<-e.ready
		return e, e.err
	}
	key := string(kbuf)
	e := &entry{key: key, ready: make(chan struct{}), action: a, digest: digest, code: code,
		lastEnd: time.Now(), decision: inv.policy.Decide(policyKey(a), 1)}
	if use {
		e.busy = 1
	}
	inv.funcs[key] = inv.lru.PushFront(e)
	var evicted []*entry
	for inv.lru.Len() > inv.maxFuncs {
		old := inv.lru.Back()
		inv.lru.Remove(old)
		oe := old.Value.(*entry)
		delete(inv.funcs, oe.key)
		evicted = append(evicted, oe)
	}
	inv.mu.Unlock()
	if len(evicted) > 0 {
		inv.m.evictions.Add(float64(len(evicted)), inv.id)
	}
	for _, oe := range evicted {
		go func() {
			<-oe.ready
			if oe.fn != nil {
				_ = oe.fn.Close(context.Background())
			}
		}()
	}

	src, err := code(ctx)
	var dirs []string
	if err == nil {
		dirs, err = actionDirs(a)
	}
	var ienv map[string]string
	if err == nil {
		ienv, err = initEnv(a)
	}
	if err == nil {
		e.fn, err = b.Prepare(ctx, sandbox.Spec{
			Kind: a.Exec.Kind, Code: src, Digest: digest, Main: a.Exec.Main,
			Limits: specLimits(a.Limits, inv.maxResult),
			Budget: &budget{inv: inv, e: e, mb: a.Limits.Memory},
			Owner:  a.Path().Namespace, Dirs: dirs, Env: ienv,
		})
	}
	e.err = err
	close(e.ready)
	if err != nil {
		// Do not cache failures: the next call may succeed (e.g. code loading).
		inv.mu.Lock()
		if el, ok := inv.funcs[key]; ok && el.Value.(*entry) == e {
			inv.lru.Remove(el)
			delete(inv.funcs, key)
		}
		inv.mu.Unlock()
		return nil, err
	}
	return e, nil
}

// Run executes job and returns its activation record. Failures of the
// function are reported in the record; an error means no record could be made.
func (inv *Invoker) Run(ctx context.Context, job *Job) *gust.Activation {
	inv.inflight.Add(1)
	defer inv.inflight.Done()
	inv.m.running.Add(1, inv.id)
	defer inv.m.running.Add(-1, inv.id)
	a := job.Action
	act := &gust.Activation{
		Namespace:    job.Namespace,
		Name:         a.Name,
		Subject:      job.Subject,
		ActivationID: job.ActivationID,
		Cause:        job.Cause,
		Version:      a.Version,
		Publish:      a.Publish,
		Logs:         []string{},
	}
	start := time.Now()
	full := a.Path().String() // "/ns/[pkg/]name", built once per run
	pkey := full              // = policyKey(a)
	inv.policy.Observe(pkey, start)
	e, err := inv.function(ctx, a, job.Digest, job.Code, true)
	var res *sandbox.Result
	if err == nil {
		fn := e.fn
		// The call's own deadline is enforced by the sandbox; this one only
		// guards against a backend that fails to enforce it.
		// Sandbox creation (bounded at 30s by the process backend) is
		// outside the action's time limit.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Duration(a.Limits.Timeout)*time.Millisecond+35*time.Second)
		// The claim ends when the backend holds the call's instance
		// (Taken): ended earlier, another Admit could claim the same idle
		// instance while it is still in the pool, and one of the two would
		// find none and start an instance no memory was reserved for.
		res, err = fn.Invoke(cctx, sandbox.Call{Params: job.Params, Env: env(job, full, start), Taken: job.claim})
		cancel()
	}
	if job.claim != nil {
		job.claim() // a call that failed before taking an instance (a no-op otherwise)
	}
	end := time.Now()
	inv.policy.Done(pkey, end)
	inv.capacity.nudge() // its instance, if kept, is idle now
	if e != nil {
		d := inv.policy.Decide(pkey, 1)
		inv.mu.Lock()
		e.busy--
		e.lastEnd, e.decision = end, d
		inv.mu.Unlock()
	}
	if err != nil {
		inv.log.Error("activation failed in the platform", "activation", job.ActivationID, "action", full, "err", err)
		msg := "Failed to provision resources to run the action."
		status := gust.StatusInternalError
		if gust.KindOf(err) == gust.KindInvalid {
			msg, status = gust.MessageOf(err), gust.StatusDeveloperError
		}
		res = &sandbox.Result{Status: status, Result: gust.ErrorResult(msg), Start: sandbox.StartCold}
	}
	act.Start = start.UnixMilli()
	act.End = end.UnixMilli()
	act.Duration = act.End - act.Start // as OpenWhisk defines it, so the three always agree
	act.Response = gust.Response{StatusCode: res.Status, Result: res.Result}
	if res.Logs != nil {
		act.Logs = res.Logs
	}
	act.Annotations = annotations(job, res, start, full[1:], inv.id)
	path := a.RecordName() // "[pkg/]name"
	inv.m.activations.Inc(job.Namespace, path, string(res.Start), res.Status.String())
	if !job.Received.IsZero() {
		inv.m.waitMs.Add(float64(start.Sub(job.Received).Milliseconds()), job.Namespace, path)
	}
	inv.m.runMs.Add(float64(act.Duration), job.Namespace, path)
	return act
}

// annotations builds the invoker's annotations in OpenWhisk's order. The
// values are appended to one buffer that the annotations share: this runs
// on every activation, and json.Marshal per value costs ~1 µs and an
// allocation each.
//
// path is the action's "ns/[pkg/]name".
func annotations(job *Job, res *sandbox.Result, start time.Time, path, invoker string) gust.KeyValues {
	a := job.Action
	kv := make(gust.KeyValues, 0, 11)
	buf := make([]byte, 0, 256)
	from := 0
	done := func(key string) { // the value appended to buf since from
		kv = append(kv, gust.KeyValue{Key: key, Value: buf[from:len(buf):len(buf)]})
		from = len(buf)
	}
	buf = a.Limits.AppendJSON(buf)
	done("limits")
	buf = gust.AppendJSONString(buf, path)
	done("path")
	buf = gust.AppendJSONString(buf, a.Exec.Kind)
	done("kind")
	buf = strconv.AppendBool(buf, res.TimedOut)
	done("timeout")
	if job.CausedBy != "" {
		buf = gust.AppendJSONString(buf, job.CausedBy)
		done("causedBy")
	}
	if res.Start != sandbox.StartWarm && res.InitTime > 0 {
		// Only when an init ran for this call: not for an instance that a
		// pre-warm initialised ahead of it, nor for a call that never got one.
		buf = strconv.AppendInt(buf, res.InitTime.Milliseconds(), 10)
		done("initTime")
	}
	wait := int64(0)
	if !job.Received.IsZero() {
		wait = start.Sub(job.Received).Milliseconds()
	}
	buf = strconv.AppendInt(buf, wait, 10)
	done("waitTime")
	buf = gust.AppendJSONString(buf, string(res.Start))
	done("start")
	if job.Binding != "" {
		buf = gust.AppendJSONString(buf, job.Binding)
		done("binding")
	}
	if invoker != "" {
		buf = gust.AppendJSONString(buf, invoker)
		done("invoker")
	}
	return kv
}

// Admit admits job before it runs: free when an idle instance of its
// function will serve it, else with the memory of the instance it will
// start reserved, waiting at most wait (0: as long as ctx allows) and
// closing idle instances of other functions to make room. Call release
// once the activation ended.
func (inv *Invoker) Admit(ctx context.Context, job *Job, wait time.Duration) (release func(), err error) {
	a := job.Action
	var kb [192]byte
	kbuf := appendFuncKey(kb[:0], a, job.Digest)
	inv.mu.Lock()
	var e *entry
	if el, ok := inv.funcs[string(kbuf)]; ok {
		e = el.Value.(*entry)
	}
	inv.mu.Unlock()
	if e != nil && inv.claimIdle(e) {
		return inv.claimed(job, e), nil
	}
	key := ""
	if e != nil {
		key = e.key // the same string, without allocating another
	} else {
		key = string(kbuf)
	}
	// While waiting for memory, an instance of its own function that goes
	// idle serves the call as well.
	var got *entry
	claim := func() bool {
		inv.mu.Lock()
		el, ok := inv.funcs[key]
		inv.mu.Unlock()
		if ok && inv.claimIdle(el.Value.(*entry)) {
			got = el.Value.(*entry)
			return true
		}
		return false
	}
	mb := a.Limits.Memory
	if err := inv.capacity.acquire(ctx, mb, wait, e, claim); errors.Is(err, errClaimed) {
		return inv.claimed(job, got), nil
	} else if err != nil {
		return nil, err
	}
	inv.mu.Lock()
	inv.tickets[key]++
	inv.mu.Unlock()
	return sync.OnceFunc(func() {
		// The ticket, if no instance took it: the call found an idle one
		// after all, or failed before starting one.
		inv.mu.Lock()
		left := inv.tickets[key] > 0
		if left {
			if inv.tickets[key]--; inv.tickets[key] == 0 {
				delete(inv.tickets, key)
			}
		}
		inv.mu.Unlock()
		if left {
			inv.capacity.release(mb)
		}
	}), nil
}

// claimed records that job counts on an idle instance of e. The claim
// ends when the backend holds the job's instance (sandbox.Call.Taken, in
// Run), when Run ends if the backend never took one, or at release if the
// job never ran. Not earlier: while the instance is still idle, another
// Admit would see it unclaimed. Not later: a running call is busy, no
// longer counted on an idle instance.
func (inv *Invoker) claimed(job *Job, e *entry) func() {
	done := sync.OnceFunc(func() {
		inv.mu.Lock()
		e.claims--
		inv.mu.Unlock()
	})
	job.claim = done
	return done
}

// claimIdle counts a call on one of e's idle instances, when it has one
// that no other admitted call counts on.
func (inv *Invoker) claimIdle(e *entry) bool {
	select {
	case <-e.ready:
	default:
		return false // being prepared: no instance yet
	}
	p, ok := e.fn.(sandbox.InstancePool)
	if !ok {
		return false
	}
	idle := p.Idle()
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if idle > e.claims {
		e.claims++
		return true
	}
	return false
}

// budget is a function's sandbox.Budget: its instances' memory comes from
// the invoker's capacity, through the ticket of the call that starts them
// when Admit reserved one.
type budget struct {
	inv *Invoker
	e   *entry
	mb  int
}

func (b *budget) Acquire(ctx context.Context) error {
	inv := b.inv
	inv.mu.Lock()
	if n := inv.tickets[b.e.key]; n > 0 {
		if n == 1 {
			delete(inv.tickets, b.e.key)
		} else {
			inv.tickets[b.e.key] = n - 1
		}
		b.e.instances++
		inv.mu.Unlock()
		inv.m.instances.Add(1, inv.id)
		return nil
	}
	inv.mu.Unlock()
	// No ticket (a pre-warm, a race with another call for an idle
	// instance): reserve now, as long as the call may wait.
	if err := inv.capacity.acquire(ctx, b.mb, 0, b.e, nil); err != nil {
		return err
	}
	inv.mu.Lock()
	b.e.instances++
	inv.mu.Unlock()
	inv.m.instances.Add(1, inv.id)
	return nil
}

func (b *budget) TryAcquire() bool {
	if !b.inv.capacity.tryAcquire(b.mb) {
		return false
	}
	b.inv.mu.Lock()
	b.e.instances++
	b.inv.mu.Unlock()
	b.inv.m.instances.Add(1, b.inv.id)
	return true
}

func (b *budget) Release() {
	b.inv.mu.Lock()
	b.e.instances--
	b.inv.mu.Unlock()
	b.inv.m.instances.Add(-1, b.inv.id)
	b.inv.capacity.release(b.mb)
}

// reclaim closes idle instances of functions other than except, least
// recently used functions first, until about need MB are free; it reports
// whether it closed any. Instances that admitted calls claimed are kept.
func (inv *Invoker) reclaim(need int, except *entry) bool {
	type victim struct {
		p      sandbox.InstancePool
		mb, at int // at: how many may be closed
	}
	var victims []victim
	inv.mu.Lock()
	for el := inv.lru.Back(); el != nil; el = el.Prev() {
		e := el.Value.(*entry)
		if e == except || e.instances == 0 {
			continue
		}
		select {
		case <-e.ready:
		default:
			continue
		}
		if p, ok := e.fn.(sandbox.InstancePool); ok {
			victims = append(victims, victim{p, e.action.Limits.Memory, e.claims})
		}
	}
	inv.mu.Unlock()
	freed := 0
	for _, v := range victims {
		if freed >= need {
			break
		}
		// Idle instances beyond the claimed ones; claims name no instance,
		// so trimming fewer than that keeps one for each.
		spare := closable(v.p) - v.at
		if spare <= 0 {
			continue
		}
		want := min(spare, (need-freed+v.mb-1)/v.mb)
		if n := v.p.Trim(func(int, time.Time) bool { return true }, want); n > 0 {
			freed += n * v.mb
			inv.m.trims.Add(float64(n), inv.id, "room")
		}
	}
	return freed > 0
}

// closable counts p's idle instances that Trim could close, each holding
// the function's memory. Idle does not: it counts what a call can run on,
// free call slots of a concurrent worker included, which free no memory
// until the whole worker is idle. Trim asks expired about every instance
// it could close; refusing them all closes none.
func closable(p sandbox.InstancePool) int {
	n := 0
	p.Trim(func(int, time.Time) bool { n++; return false }, 0)
	return n
}

// FreeMemory is the memory (MB) a call could have now: not reserved, or
// held by idle instances that would be closed to make room (not those
// admitted calls claimed).
func (inv *Invoker) FreeMemory() int {
	free := inv.capacity.free()
	type pool struct {
		p          sandbox.InstancePool
		mb, claims int
	}
	var pools []pool
	inv.mu.Lock()
	for _, el := range inv.funcs {
		e := el.Value.(*entry)
		if e.instances == 0 {
			continue
		}
		select {
		case <-e.ready:
		default:
			continue // being prepared: e.fn is not set yet
		}
		if p, ok := e.fn.(sandbox.InstancePool); ok {
			pools = append(pools, pool{p, e.action.Limits.Memory, e.claims})
		}
	}
	inv.mu.Unlock()
	for _, p := range pools {
		free += max(0, closable(p.p)-p.claims) * p.mb
	}
	return free
}

// Drain waits for running activations to finish or ctx to end.
func (inv *Invoker) Drain(ctx context.Context) error {
	done := make(chan struct{})
	go func() { inv.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close releases every prepared function.
func (inv *Invoker) Close(ctx context.Context) {
	inv.mu.Lock()
	select {
	case <-inv.stop:
	default:
		close(inv.stop)
	}
	inv.mu.Unlock()
	inv.swept.Wait()
	inv.mu.Lock()
	entries := make([]*entry, 0, inv.lru.Len())
	for el := inv.lru.Front(); el != nil; el = el.Next() {
		entries = append(entries, el.Value.(*entry))
	}
	inv.funcs = map[string]*list.Element{}
	inv.lru.Init()
	inv.mu.Unlock()
	for _, e := range entries {
		<-e.ready
		if e.fn != nil {
			_ = e.fn.Close(ctx)
		}
	}
}

// env builds the __OW_* environment of a job started at start.
func env(job *Job, action string, start time.Time) map[string]string {
	env := map[string]string{
		"__OW_NAMESPACE":      job.Namespace,
		"__OW_ACTION_NAME":    action,
		"__OW_ACTION_VERSION": job.Action.Version,
		"__OW_ACTIVATION_ID":  job.ActivationID,
		"__OW_TRANSACTION_ID": job.ActivationID,
		"__OW_DEADLINE":       strconv.FormatInt(start.Add(time.Duration(job.Action.Limits.Timeout)*time.Millisecond).UnixMilli(), 10),
	}
	if job.APIKey != "" {
		env["__OW_API_KEY"] = job.APIKey
	}
	return env
}
