package enginesim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"github.com/docker/docker/api/types/events"
)

// world is everything the engine knows. The Sim's mu guards it.
type world struct {
	opt Options
	// seq numbers every object created, for deterministic IDs and the list order.
	seq uint64

	containers map[string]*ctr // by ID
	names      map[string]string

	networks map[string]*netw // by ID
	netNames map[string]string
	userNets int

	services map[string]*service // by ID
	svcNames map[string]string
	tasks    map[string]*task // by ID
	nodes    []*node          // nodes[0] is this engine

	// nextPort is the next host port handed out for a published port without one.
	nextPort int
	// nextIngressPort is the next Swarm ingress port (the engine's 30000-32767 range).
	nextIngressPort int
}

func (w *world) init(opt Options) {
	w.opt = opt
	w.containers, w.names = map[string]*ctr{}, map[string]string{}
	w.networks, w.netNames = map[string]*netw{}, map[string]string{}
	w.services, w.svcNames, w.tasks = map[string]*service{}, map[string]string{}, map[string]*task{}
	w.nextPort, w.nextIngressPort = 32768, 30000
	w.newNetwork("bridge", "bridge", "172.17.0.0/16")
	w.newNetwork("host", "host", "")
	w.newNetwork("none", "null", "")
	if opt.Swarm {
		w.newNetwork("docker_gwbridge", "bridge", "172.31.0.0/16")
		in := w.newNetwork("ingress", "overlay", "10.0.0.0/16")
		in.ingress, in.attachable = true, false
		for i := 0; i < opt.Nodes; i++ {
			w.addNode()
		}
	}
}

// now is the world's clock: real time, in UTC as the engine writes it.
func (w *world) now() time.Time { return time.Now().UTC() }

// digest is a deterministic hash of the kind and sequence number of a new object.
func (w *world) digest(kind string) [32]byte {
	w.seq++
	return sha256.Sum256(fmt.Appendf(nil, "enginesim/%s/%d", kind, w.seq))
}

// bump advances the sequence for a Swarm object's new version index.
func (w *world) bump() uint64 {
	w.seq++
	return w.seq
}

// hexID is a 64-hex-digit ID, as containers and local networks have.
func (w *world) hexID(kind string) string {
	d := w.digest(kind)
	return hex.EncodeToString(d[:])
}

// swarmID is a 25-character base-36 ID, as Swarm objects have.
func (w *world) swarmID(kind string) string {
	d := w.digest(kind)
	s := new(big.Int).SetBytes(d[:]).Text(36)
	return s[len(s)-25:]
}

// event is one engine event, before the bus stamps its time.
type event struct {
	typ    events.Type
	action string
	id     string
	attrs  map[string]string
	scope  string
}

// msg is the event as the engine sends it, the deprecated status/id/from fields included for
// container events as 20.10 still fills them.
func (e event) msg() events.Message {
	scope := e.scope
	if scope == "" {
		scope = "local"
	}
	m := events.Message{Type: e.typ, Action: events.Action(e.action), Scope: scope,
		Actor: events.Actor{ID: e.id, Attributes: e.attrs}}
	if e.typ == events.ContainerEventType {
		//lint:ignore SA1019 the engine still fills the deprecated fields
		m.Status, m.ID, m.From = e.action, e.id, e.attrs["image"]
	}
	return m
}
