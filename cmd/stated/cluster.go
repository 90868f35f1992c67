package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stated-dev/stated/cluster"
	"github.com/stated-dev/stated/session"
	"github.com/stated-dev/stated/storage"
	"github.com/stated-dev/stated/transport"
)

// clusterSettings join a node to a cluster. Each has a flag and a STATED_*
// environment variable. Without NATS the node runs alone.
type clusterSettings struct {
	NATS     string        // --nats, STATED_NATS: NATS server URLs, comma-separated
	Node     string        // --node, STATED_NODE: this node's name, unique in the cluster
	Replicas int           // --replicas, STATED_REPLICAS: JetStream replicas of the log and leases
	LeaseTTL time.Duration // --lease-ttl, STATED_LEASE_TTL: how long ownership outlives its node
}

// joinTimeout bounds the connection to NATS and the creation of the stream and
// the bucket at start-up.
const joinTimeout = 30 * time.Second

func (c *serveConfig) clusterFlags(fs *flag.FlagSet) {
	s := &c.Cluster
	host, _ := os.Hostname()
	fs.StringVar(&s.NATS, "nats", env("STATED_NATS", ""),
		"NATS server URLs with JetStream, comma-separated: join a cluster (default: run alone)")
	fs.StringVar(&s.Node, "node", env("STATED_NODE", host),
		"this node's name in the cluster, unique among its nodes")
	fs.IntVar(&s.Replicas, "replicas", c.envInt("STATED_REPLICAS", 1),
		"JetStream replicas of the session log and the ownership bucket (3 in production)")
	fs.DurationVar(&s.LeaseTTL, "lease-ttl", c.envDuration("STATED_LEASE_TTL",
		cluster.DefaultLeaseTTL), "how long a dead node's sessions wait before another "+
		"node takes them over; the same on every node")
}

// validate checks the settings of a node that joins a cluster.
func (s *clusterSettings) validate() error {
	if s.NATS == "" {
		return nil
	}
	err := cluster.LeaseConfig{Node: s.Node, TTL: s.LeaseTTL, Replicas: s.Replicas}.Validate()
	if err != nil {
		return fmt.Errorf("%w: --node, --lease-ttl or --replicas: %v", errUsage, err)
	}
	if s.Replicas > storage.MaxJetStreamReplicas {
		return fmt.Errorf("%w: --replicas must be 1 to %d", errUsage,
			storage.MaxJetStreamReplicas)
	}
	return nil
}

// clusterNode is what a node of a cluster holds: its NATS connection, the
// shared session log and its ownership of sessions. A nil *clusterNode is a
// node that runs alone, and its methods do nothing.
type clusterNode struct {
	cfg    clusterSettings
	nc     *nats.Conn
	store  *storage.JetStream
	owners *cluster.Owners
	log    *slog.Logger
	// sessions is the manager that onLost drops sessions from, once bound.
	sessions atomic.Pointer[session.Manager]
}

// joinCluster connects to NATS and opens the shared log and the ownership
// bucket, when the settings name NATS servers. It returns the store of session
// logs to use: the shared one in a cluster, local otherwise.
func joinCluster(ctx context.Context, s clusterSettings, local storage.Store,
	log *slog.Logger) (storage.Store, *clusterNode, error) {
	if s.NATS == "" {
		return local, nil, nil
	}
	nc, err := nats.Connect(s.NATS, nats.Name("stated "+s.Node), nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond), nats.RetryOnFailedConnect(false),
		nats.Timeout(5*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS: %w", err)
	}
	cn := &clusterNode{cfg: s, nc: nc, log: log}
	if err := cn.open(ctx); err != nil {
		nc.Close()
		return nil, nil, err
	}
	log.Info("joined the cluster", "node", s.Node, "nats", nc.ConnectedUrlRedacted(),
		"replicas", s.Replicas, "lease_ttl", s.LeaseTTL)
	return cn.store, cn, nil
}

// open creates (or checks) the stream and the bucket and starts ownership.
func (cn *clusterNode) open(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, joinTimeout)
	defer cancel()
	js, err := jetstream.New(cn.nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cn.store, err = storage.OpenJetStream(ctx, js,
		storage.JetStreamOptions{Replicas: cn.cfg.Replicas})
	if err != nil {
		return err
	}
	leases, err := cluster.NewLeases(ctx, js, cluster.LeaseConfig{Node: cn.cfg.Node,
		TTL: cn.cfg.LeaseTTL, Replicas: cn.cfg.Replicas})
	if err != nil {
		return err
	}
	cn.owners = cluster.NewOwners(leases, cn.store, cn.log, cn.lost)
	return nil
}

// ownership is what the session manager asks before it serves a session; nil
// on a node that runs alone.
func (cn *clusterNode) ownership() session.Ownership {
	if cn == nil {
		return nil
	}
	return ownership{owners: cn.owners}
}

// bind makes lost leases drop their sessions from sessions.
func (cn *clusterNode) bind(sessions *session.Manager) {
	if cn != nil {
		cn.sessions.Store(sessions)
	}
}

// serveRelays forwards clients between the nodes.
func (cn *clusterNode) serveRelays(api *transport.Server) error {
	if cn == nil {
		return nil
	}
	return api.EnableRelays(transport.RelayConfig{Conn: cn.nc, Node: cn.cfg.Node})
}

// lost drops a session whose lease this node lost.
func (cn *clusterNode) lost(id string, err error) {
	if m := cn.sessions.Load(); m != nil {
		m.Drop(id, err)
	}
}

// leave ends the node's part in the cluster, after its answers are stored:
// it releases every lease, so other nodes take the sessions over at once,
// stops renewing, and closes the log and the NATS connection.
func (cn *clusterNode) leave() {
	if cn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cn.owners.ReleaseAll(ctx); err != nil {
		cn.log.Warn("leases not released; they run out by themselves", "err", err)
	}
	cn.owners.Close()
	_ = cn.store.Close()
	_ = cn.nc.FlushTimeout(time.Second)
	cn.nc.Close()
	cn.log.Info("left the cluster", "node", cn.cfg.Node)
}

// ownership adapts cluster.Owners to session.Ownership.
type ownership struct {
	owners *cluster.Owners
}

// Acquire claims and fences the session, translating another node's lease into
// the session layer's error.
func (o ownership) Acquire(ctx context.Context, id string) error {
	err := o.owners.Acquire(ctx, id)
	var owned *cluster.OwnedError
	if errors.As(err, &owned) {
		return &session.OwnedElsewhereError{Node: owned.Node}
	}
	return err
}

// Release gives the session's lease up.
func (o ownership) Release(ctx context.Context, id string) {
	o.owners.Release(ctx, id)
}
