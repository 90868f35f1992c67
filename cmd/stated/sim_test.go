package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers/sim"
)

func TestSimSettingsBecomeOptions(t *testing.T) {
	t.Setenv("STATED_SIM_FAULTS", "status=529@0.1")
	t.Setenv("STATED_SIM_LATENCY_PER_1K", "40ms")
	var c simSettings
	var envErr error
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.register(fs, "sim-", "STATED_SIM_", &envErr)
	err := fs.Parse([]string{"--sim-manual-clock", "--sim-fault", "cut=3@0.2,stall=1@0.1",
		"--sim-fault-seed", "9", "--sim-latency-tokens-per-second", "80"})
	if err != nil || envErr != nil {
		t.Fatal(err, envErr)
	}
	opts, err := c.options(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, manual := opts.Clock.(*sim.ManualClock); !manual || opts.FaultSeed != 9 ||
		len(opts.Faults) != 2 || opts.Faults[0].String() != "cut=3@0.2" ||
		opts.Latency.PerThousandUncached != 40*time.Millisecond ||
		opts.Latency.TokensPerSecond != 80 {
		t.Errorf("options %+v", opts)
	}
}

func TestSimFaultsComeFromTheEnvironmentWithoutTheFlag(t *testing.T) {
	t.Setenv("STATED_SIM_FAULTS", "status=529@0.1,empty@0.1")
	var c simSettings
	var envErr error
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.register(fs, "sim-", "STATED_SIM_", &envErr)
	if err := fs.Parse(nil); err != nil || envErr != nil {
		t.Fatal(err, envErr)
	}
	if opts, err := c.options(nil, nil); err != nil || len(opts.Faults) != 2 {
		t.Errorf("options %+v, %v: want the two faults of STATED_SIM_FAULTS", opts, err)
	}
}

func TestSimSettingsAreChecked(t *testing.T) {
	tests := []struct {
		name string
		env  string
		args []string
	}{
		{"a fault that does not parse", "", []string{"--sim-fault", "explode@0.1"}},
		{"rates over one", "", []string{"--sim-fault", "cut=1@0.6,stall=1@0.6"}},
		{"a negative latency", "", []string{"--sim-latency-first-token", "-1s"}},
		{"an environment value that does not parse", "soon", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != "" {
				t.Setenv("STATED_SIM_LATENCY_FIRST_TOKEN", tt.env)
			}
			var c simSettings
			var envErr error
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			c.register(fs, "sim-", "STATED_SIM_", &envErr)
			err := fs.Parse(tt.args)
			if err == nil {
				err = envErr
			}
			if err == nil {
				err = c.validate()
			}
			if !errors.Is(err, errUsage) {
				t.Errorf("error %v, want a usage error", err)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for one writer and one reader.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSimCommandServesTheClockControl(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- simCmd(ctx, []string{"--addr", "127.0.0.1:0", "--manual-clock"}, &logs)
	}()
	addrRE := regexp.MustCompile(`addr=(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	var addr string
	for addr == "" {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("the simulator did not start: %s", logs.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}

	resp, err := http.Post("http://"+addr+"/_sim/clock", "application/json",
		strings.NewReader(`{"advance_ms": 60000}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"manual":true`) {
		t.Errorf("POST /_sim/clock: %d %s", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("stated sim ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stated sim did not stop")
	}
}
