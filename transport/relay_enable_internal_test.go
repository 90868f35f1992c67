package transport

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/stated-dev/stated/internal/natstest"
)

// Regression: EnableRelays returned with its attach subscription still in the
// connection's buffer, so a node that resumed a session right after the owner
// enabled relays could be told there were no responders, and its client got
// owner_unavailable for a session whose owner was up.
func TestAnOwnerTakesAttachRequestsAsSoonAsRelaysAreEnabled(t *testing.T) {
	ns := natstest.StartServer(t)
	owner, other := ns.Connect(t), ns.Connect(t)
	for i := range 50 {
		cfg := Config{}
		cfg.setDefaults()
		s := &Server{cfg: cfg, log: cfg.Logger}
		node := fmt.Sprintf("n%d", i)
		if err := s.EnableRelays(RelayConfig{Conn: owner, Node: node}); err != nil {
			t.Fatal(err)
		}
		// A request that is not an attach request is answered with a refusal;
		// what matters is that it is answered at all.
		_, err := other.Request(attachSubject(node), []byte("{}"), 5*time.Second)
		if errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("attach request %d right after EnableRelays: %v", i, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		s.stopRelays()
	}
}
