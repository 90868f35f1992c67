package transport

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stated-dev/stated/internal/latency"
)

// GET /stats reports the server's own figures in one JSON object: process
// resources, connections, sessions, turns and the latency histograms of the time
// the server adds to a turn and to each streamed delta. docs/operations.md
// documents every field.

// serverStats holds the figures of GET /stats that the server counts itself. Its
// zero value is ready; every field is safe for concurrent use.
type serverStats struct {
	added      latency.Histogram // turn's last frame read to provider request written
	relay      latency.Histogram // upstream bytes read to delta frame written
	relayFirst latency.Histogram // the same, for an answer's first delta on a connection
	commitWait latency.Histogram // a delta's upstream bytes read to its turn durable
	relayPath  latency.Histogram // a delta ready to relay to its frame written
	conns      atomic.Int64      // stated.v1 WebSocket connections open now
}

// processStart is when the process started, near enough: uptime counts from it.
var processStart = time.Now()

// observeRelay records the relay of one delta frame written to a client: at is when
// the upstream bytes that completed it were read, ready when its session could pass
// it on (at, or later when it waited for its turn to be durable); first marks an
// answer's first delta on this connection. A zero at records nothing.
func (s *Server) observeRelay(at, ready time.Time, first bool) {
	if at.IsZero() {
		return
	}
	now := time.Now()
	d := now.Sub(at)
	s.stats.relay.Record(d)
	if first {
		s.stats.relayFirst.Record(d)
	}
	if !ready.IsZero() {
		s.stats.relayPath.Record(now.Sub(ready))
	}
}

// ObserveAdded records the time the server added before a turn's provider call:
// from the WebSocket frame that completed the turn read to the provider request
// written upstream. It is the session.Config.ObserveAdded hook of the server's
// sessions.
func (s *Server) ObserveAdded(d time.Duration) {
	s.stats.added.Record(d)
}

// ObserveCommitWait records the time a delta waited for the turn it answers to be
// durable: from the moment its upstream bytes were read to the moment the turn's
// durable append returned, for a delta read before that. It is the
// session.Config.ObserveCommitWait hook of the server's sessions.
func (s *Server) ObserveCommitWait(d time.Duration) {
	s.stats.commitWait.Record(d)
}

// countConnection counts a stated.v1 WebSocket connection open until the returned
// function is called.
func (s *Server) countConnection() func() {
	s.stats.conns.Add(1)
	return func() { s.stats.conns.Add(-1) }
}

// statsBody is the object GET /stats answers.
type statsBody struct {
	Time             time.Time    `json:"time"`
	UptimeSec        float64      `json:"uptime_sec"`
	Process          processStats `json:"process"`
	Connections      int64        `json:"connections"`
	SessionsInMemory int          `json:"sessions_in_memory"`
	Turns            int64        `json:"turns"`
	Latency          struct {
		Added      histogramJSON `json:"added"`
		Relay      histogramJSON `json:"relay"`
		RelayFirst histogramJSON `json:"relay_first"`
		CommitWait histogramJSON `json:"commit_wait"`
		RelayPath  histogramJSON `json:"relay_path"`
	} `json:"latency"`
}

// processStats are the process's resources; a figure the system does not offer
// is 0.
type processStats struct {
	CPUUserSec   float64 `json:"cpu_user_sec"`
	CPUSysSec    float64 `json:"cpu_sys_sec"`
	CPUSec       float64 `json:"cpu_sec"`
	RSSBytes     int64   `json:"rss_bytes"`
	GoHeapBytes  uint64  `json:"go_heap_bytes"`
	GoStackBytes uint64  `json:"go_stack_bytes"`
	GoSysBytes   uint64  `json:"go_sys_bytes"`
	Goroutines   int     `json:"goroutines"`
	GCCycles     uint32  `json:"gc_cycles"`
	OpenFDs      int     `json:"open_fds"`
}

// histogramJSON is a latency histogram in milliseconds.
type histogramJSON struct {
	Count   int64        `json:"count"`
	SumMS   float64      `json:"sum_ms"`
	MaxMS   float64      `json:"max_ms"`
	Buckets []bucketJSON `json:"buckets"`
}

// bucketJSON is written as the pair [upper_bound_ms, count].
type bucketJSON latency.Bucket

// MarshalJSON writes the bucket as [upper_bound_ms, count].
func (b bucketJSON) MarshalJSON() ([]byte, error) {
	out := append(make([]byte, 0, 32), '[')
	out = strconv.AppendFloat(out, millis(b.Upper), 'g', -1, 64)
	out = append(out, ',')
	out = strconv.AppendInt(out, b.Count, 10)
	return append(out, ']'), nil
}

func histogramOfSnapshot(s latency.Snapshot) histogramJSON {
	h := histogramJSON{Count: s.Count, SumMS: millis(s.Sum), MaxMS: millis(s.Max),
		Buckets: make([]bucketJSON, len(s.Buckets))}
	for i, b := range s.Buckets {
		h.Buckets[i] = bucketJSON(b)
	}
	return h
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// serveStats answers GET /stats. With authentication on or an admin key set it
// needs the admin key, like the admin API; otherwise it is open, like /metrics.
// With ?gc=1 it first collects garbage and returns freed memory to the system, so
// that the memory figures are stable.
func (s *Server) serveStats(w http.ResponseWriter, r *http.Request) {
	if (s.cfg.Auth || s.cfg.AdminKey != "") && !s.requireAdmin(w, r) {
		return
	}
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
		debug.FreeOSMemory()
	}
	now := time.Now()
	body := statsBody{
		Time: now.UTC(), UptimeSec: now.Sub(processStart).Seconds(),
		Process:          readProcessStats(),
		Connections:      s.stats.conns.Load(),
		SessionsInMemory: s.sessions.LiveSessions(),
		Turns:            s.sessions.TurnsAccepted(),
	}
	body.Latency.Added = histogramOfSnapshot(s.stats.added.Snapshot())
	body.Latency.Relay = histogramOfSnapshot(s.stats.relay.Snapshot())
	body.Latency.RelayFirst = histogramOfSnapshot(s.stats.relayFirst.Snapshot())
	body.Latency.CommitWait = histogramOfSnapshot(s.stats.commitWait.Snapshot())
	body.Latency.RelayPath = histogramOfSnapshot(s.stats.relayPath.Snapshot())
	respondJSON(w, http.StatusOK, body)
}

// readProcessStats reads the process's CPU time, memory and descriptors.
// runtime.ReadMemStats stops the world briefly: fine for an occasional scrape.
func readProcessStats() processStats {
	var p processStats
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		p.CPUUserSec = time.Duration(ru.Utime.Nano()).Seconds()
		p.CPUSysSec = time.Duration(ru.Stime.Nano()).Seconds()
		p.CPUSec = p.CPUUserSec + p.CPUSysSec
	}
	p.RSSBytes = residentBytes()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.GoHeapBytes, p.GoStackBytes, p.GoSysBytes = ms.HeapAlloc, ms.StackInuse, ms.Sys
	p.GCCycles = ms.NumGC
	p.Goroutines = runtime.NumGoroutine()
	p.OpenFDs = openFDs()
	return p
}

// statm is /proc/self/statm, opened on first use and kept open, so that the
// resident set can still be read when the process has used up its open files,
// which is when a load test most needs it.
var statm struct {
	once sync.Once
	f    *os.File // nil where there is no /proc
}

// residentBytes returns the resident set size from /proc/self/statm (its second
// field, in pages), or 0 where there is no /proc.
func residentBytes() int64 {
	statm.once.Do(func() { statm.f, _ = os.Open("/proc/self/statm") })
	if statm.f == nil {
		return 0
	}
	var buf [128]byte
	n, err := statm.f.ReadAt(buf[:], 0)
	if n == 0 || (err != nil && !errors.Is(err, io.EOF)) {
		return 0
	}
	fields := bytes.Fields(buf[:n])
	if len(fields) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(string(fields[1]), 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

// openFDs counts the entries of /proc/self/fd, less the one reading it, or returns
// 0 where there is no /proc.
func openFDs() int {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0
	}
	defer dir.Close()
	n := 0
	for {
		names, err := dir.Readdirnames(1024)
		n += len(names)
		if err != nil || len(names) == 0 {
			break
		}
	}
	return max(n-1, 0)
}
