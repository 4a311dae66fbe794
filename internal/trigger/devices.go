package trigger

import (
	"sync/atomic"

	"github.com/gust-faas/gust/internal/store"
)

// Devices authenticates MQTT devices (and external NATS clients) with a
// namespace's credential: user = the namespace's UUID, password = its key.
// A device may publish and subscribe only under its namespace's subjects
// (topics "<namespace>/…"), so tenants never see each other's events. The
// broker starts before the key store, so the keys are set later; until
// then every device is refused.
type Devices struct {
	keys atomic.Pointer[store.Keys]
}

// SetKeys gives the key store to check credentials against.
func (d *Devices) SetKeys(k *store.Keys) { d.keys.Store(k) }

// Check returns the subjects the client user/password may use.
func (d *Devices) Check(user, password string) ([]string, bool) {
	keys := d.keys.Load()
	if keys == nil {
		return nil, false
	}
	id, ok := keys.Authenticate(user, password)
	if !ok {
		return nil, false
	}
	root, err := NamespaceRoot(id.Namespace)
	if err != nil {
		return nil, false
	}
	return []string{root, root + ".>"}, true
}
