package main

import (
	"errors"
	"io"
	"testing"
	"time"
)

func TestIdleTimeoutIsReadAndBounded(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     string
		want    time.Duration
		refused bool
	}{
		{"the default is ten minutes", nil, "", 10 * time.Minute, false},
		{"the flag sets it", []string{"--idle-timeout", "1s"}, "", time.Second, false},
		{"the environment sets it", nil, "90s", 90 * time.Second, false},
		{"the flag wins over the environment", []string{"--idle-timeout", "2m"}, "90s",
			2 * time.Minute, false},
		{"under a second is refused", []string{"--idle-timeout", "999ms"}, "", 0, true},
		{"zero is refused", []string{"--idle-timeout", "0s"}, "", 0, true},
		{"a file sets it", []string{"--config", ""}, "", 45 * time.Second, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearServeEnv(t)
			if c.env != "" {
				t.Setenv("STATED_IDLE_TIMEOUT", c.env)
			}
			if len(c.args) == 2 && c.args[0] == "--config" {
				c.args[1] = writeConfig(t, "idle_timeout = \"45s\"\n")
			}
			cfg, _, err := parseServe(c.args, io.Discard)
			switch {
			case c.refused && !errors.Is(err, errUsage):
				t.Fatalf("error %v, want a usage error", err)
			case c.refused:
			case err != nil:
				t.Fatal(err)
			case cfg.IdleTimeout != c.want:
				t.Errorf("idle timeout %v, want %v", cfg.IdleTimeout, c.want)
			}
		})
	}
}
