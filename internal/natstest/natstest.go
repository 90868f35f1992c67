// Package natstest starts real nats-server processes with JetStream for tests,
// on 127.0.0.1 only, and makes sure none of them outlives the test.
//
// The server binary is found through $NATS_SERVER_BIN, then PATH. A test that
// needs it and cannot find it is skipped, unless the environment says CI=true,
// where a missing server is a failure: CI installs it.
package natstest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// MaxPayload is the max_payload every started server allows. It is above the
// NATS default of 1 MiB because the stores put a record of up to 1 MiB, plus
// headers, into one message.
const MaxPayload = 4 << 20

// Timeouts of the helpers; a server on loopback is ready in well under a second.
const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	pollEvery    = 20 * time.Millisecond
)

// Cluster is a set of nats-server processes with JetStream, named n1..nN and
// addressed by index 0..N-1. A Cluster of one (StartServer) has no routes. All
// processes are killed when the test ends.
type Cluster struct {
	t     testing.TB
	bin   string
	nodes []*node
}

// node is one server: its ports and files stay the same across restarts.
type node struct {
	name                              string
	dir                               string
	clientPort, clusterPort, httpPort int

	// cmd and exited belong to the running process; exited closes when it ends.
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartServer starts one standalone server with JetStream and waits until it is
// ready.
func StartServer(t testing.TB) *Cluster {
	t.Helper()
	return start(t, 1)
}

// StartCluster starts n routed servers with JetStream and waits until every one
// of them is in contact with a JetStream meta leader and current with it.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: cluster of %d servers", n)
	}
	return start(t, n)
}

func start(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, bin: Binary(t)}
	ports := freePorts(t, 3*n)
	root := t.TempDir()
	for i := range n {
		nd := &node{
			name:        fmt.Sprintf("n%d", i+1),
			dir:         filepath.Join(root, fmt.Sprintf("n%d", i+1)),
			clientPort:  ports[3*i],
			clusterPort: ports[3*i+1],
			httpPort:    ports[3*i+2],
		}
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			t.Fatalf("natstest: %v", err)
		}
		c.nodes = append(c.nodes, nd)
	}
	for _, nd := range c.nodes {
		c.writeConfig(nd)
	}

	t.Cleanup(c.killAll)
	for _, nd := range c.nodes {
		c.launch(nd)
	}
	for i := range c.nodes {
		c.waitReady(i)
	}
	return c
}

// Binary returns the path of the nats-server binary: $NATS_SERVER_BIN, else the
// one on PATH. If there is none, it skips the test, or fails it when CI=true.
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("NATS_SERVER_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("natstest: NATS_SERVER_BIN: %v", err)
		}
		return bin
	}
	bin, err := exec.LookPath("nats-server")
	if err == nil {
		return bin
	}
	msg := "natstest: nats-server not found: set NATS_SERVER_BIN or put it on PATH"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// URLs returns the client URLs of all servers, comma-separated, as nats.Connect
// takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// URL returns the client URL of server i.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.node(i).clientPort)
}

// Name returns the server name of server i ("n1" for i = 0).
func (c *Cluster) Name(i int) string {
	return c.node(i).name
}

// Index returns the index of the server named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, nd := range c.nodes {
		if nd.name == name {
			return i
		}
	}
	return -1
}

// Connect returns a connection to all servers that keeps reconnecting while
// servers come and go; it is closed when the test ends.
func (c *Cluster) Connect(t testing.TB, opts ...nats.Option) *nats.Conn {
	t.Helper()
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.Timeout(2 * time.Second),
	}, opts...)
	nc, err := nats.Connect(c.URLs(), opts...)
	if err != nil {
		t.Fatalf("natstest: connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// Kill ends server i with SIGKILL and waits until the process is gone.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	nd := c.node(i)
	if !nd.running() {
		c.t.Fatalf("natstest: kill %s: not running", nd.name)
	}
	_ = nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.exited
}

// Stop shuts server i down gracefully (SIGTERM) and waits until the process is
// gone; after stopTimeout it kills it.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	nd := c.node(i)
	if !nd.running() {
		c.t.Fatalf("natstest: stop %s: not running", nd.name)
	}
	_ = nd.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-nd.exited:
	case <-time.After(stopTimeout):
		_ = nd.cmd.Process.Signal(syscall.SIGKILL)
		<-nd.exited
		c.t.Errorf("natstest: %s ignored SIGTERM for %s; killed", nd.name, stopTimeout)
	}
}

// Restart starts server i again, after Kill or Stop, with the same ports and
// store directory, and waits until it is ready and current.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	nd := c.node(i)
	if nd.running() {
		c.t.Fatalf("natstest: restart %s: still running", nd.name)
	}
	c.launch(nd)
	c.waitReady(i)
}

func (c *Cluster) node(i int) *node {
	c.t.Helper()
	if i < 0 || i >= len(c.nodes) {
		c.t.Fatalf("natstest: no server %d in a cluster of %d", i, len(c.nodes))
	}
	return c.nodes[i]
}

func (nd *node) running() bool {
	if nd.exited == nil {
		return false
	}
	select {
	case <-nd.exited:
		return false
	default:
		return true
	}
}

// writeConfig writes nd's configuration file: client, monitoring and (in a
// cluster) route listeners on 127.0.0.1, routes to every other server.
func (c *Cluster) writeConfig(nd *node) {
	c.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "server_name: %s\n", nd.name)
	fmt.Fprintf(&b, "listen: \"127.0.0.1:%d\"\n", nd.clientPort)
	fmt.Fprintf(&b, "http: \"127.0.0.1:%d\"\n", nd.httpPort)
	fmt.Fprintf(&b, "max_payload: %d\n", MaxPayload)
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n}\n", filepath.Join(nd.dir, "store"))
	if len(c.nodes) > 1 {
		var routes []string
		for _, other := range c.nodes {
			if other != nd {
				routes = append(routes, fmt.Sprintf("%q", fmt.Sprintf(
					"nats-route://127.0.0.1:%d", other.clusterPort)))
			}
		}
		fmt.Fprintf(&b, "cluster {\n  name: natstest\n  listen: \"127.0.0.1:%d\"\n",
			nd.clusterPort)
		fmt.Fprintf(&b, "  routes: [%s]\n}\n", strings.Join(routes, ", "))
	}
	if err := os.WriteFile(nd.configPath(), []byte(b.String()), 0o644); err != nil {
		c.t.Fatalf("natstest: %v", err)
	}
}

func (nd *node) configPath() string { return filepath.Join(nd.dir, "nats.conf") }
func (nd *node) logPath() string    { return filepath.Join(nd.dir, "server.log") }

// launch starts nd's process. Its output goes to a log file that is shown if the
// test fails.
func (c *Cluster) launch(nd *node) {
	c.t.Helper()
	logFile, err := os.OpenFile(nd.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatalf("natstest: %v", err)
	}
	defer logFile.Close()

	cmd := exec.Command(c.bin, "-c", nd.configPath())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("natstest: start %s: %v", nd.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	nd.cmd, nd.exited = cmd, exited
}

// waitReady polls server i's health endpoint until JetStream reports healthy: in
// contact with a meta leader, current with it, and its streams caught up.
func (c *Cluster) waitReady(i int) {
	c.t.Helper()
	nd := c.nodes[i]
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", nd.httpPort)
	deadline := time.Now().Add(readyTimeout)
	var last error
	for time.Now().Before(deadline) {
		if !nd.running() {
			c.t.Fatalf("natstest: %s exited while starting:\n%s", nd.name, tail(nd.logPath()))
		}
		if last = healthy(url); last == nil {
			return
		}
		time.Sleep(pollEvery)
	}
	c.t.Fatalf("natstest: %s not ready after %s: %v\n%s", nd.name, readyTimeout, last,
		tail(nd.logPath()))
}

// healthy asks a server's /healthz whether it is ready.
func healthy(url string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthz: %s", resp.Status)
	}
	return nil
}

// killAll kills every server still running and, if the test failed, shows the
// end of each server's log.
func (c *Cluster) killAll() {
	for _, nd := range c.nodes {
		if nd.running() {
			_ = nd.cmd.Process.Signal(syscall.SIGKILL)
			<-nd.exited
		}
	}
	if c.t.Failed() {
		for _, nd := range c.nodes {
			c.t.Logf("natstest: log of %s:\n%s", nd.name, tail(nd.logPath()))
		}
	}
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment ago.
// All listeners stay open until the last port is picked, so none repeats.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick a port: %v", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// noise marks log lines that say nothing about a failure: the helpers' own
// health polls, and routes retried while a server is down.
var noise = []string{"Healthcheck failed", "Error trying to connect to route"}

// tail returns the last lines of a log file, noise left out, or why it could
// not be read.
func tail(path string) string {
	const maxLines = 40
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	var lines []string
	for line := range strings.SplitSeq(strings.TrimRight(string(data), "\n"), "\n") {
		if !slices.ContainsFunc(noise, func(n string) bool { return strings.Contains(line, n) }) {
			lines = append(lines, line)
		}
	}
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}
