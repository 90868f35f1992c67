package main

import (
	"errors"
	"flag"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/providers/anthropic"
	"github.com/stated-dev/stated/providers/openai"
)

// parseUpstream parses args as serve's flags and returns the upstream settings.
func parseUpstream(t *testing.T, args ...string) (*serveConfig, error) {
	t.Helper()
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg.flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return &cfg, cfg.Upstream.validate()
}

func TestUpstreamDefaults(t *testing.T) {
	cfg, err := parseUpstream(t)
	if err != nil {
		t.Fatal(err)
	}
	want := upstreamSettings{Retries: 2, RequestTimeout: 2 * time.Minute, OpenAIAPI: "chat",
		OpenAICompat: "openai", IdleConns: 256}
	if cfg.Upstream != want {
		t.Fatalf("defaults %+v, want %+v", cfg.Upstream, want)
	}
}

func TestUpstreamSettingsAreBounded(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"negative retries", []string{"--retries", "-1"}},
		{"too many retries", []string{"--retries", "11"}},
		{"a negative request timeout", []string{"--request-timeout", "-1s"}},
		{"a request timeout over an hour", []string{"--request-timeout", "2h"}},
		{"an unknown openai api", []string{"--openai-api", "assistants"}},
		{"an unknown compat preset", []string{"--openai-compat", "lmstudio"}},
		{"responses against a local server", []string{"--openai-api", "responses",
			"--openai-compat", "ollama"}},
		{"five fallback models", []string{"--fallback-models", "a,b,c,d,e"}},
		{"a repeated fallback model", []string{"--fallback-models", "a,b,a"}},
		{"no idle upstream connections", []string{"--upstream-idle-conns", "0"}},
		{"too many idle upstream connections", []string{"--upstream-idle-conns", "65537"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseUpstream(t, c.args...); !errors.Is(err, errUsage) {
				t.Fatalf("err %v, want a usage error", err)
			}
		})
	}
}

func TestUpstreamPicksTheOpenAIAdapter(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "openai"},
		{[]string{"--openai-api", "responses"}, "openai-responses"},
		{[]string{"--openai-compat", "vllm"}, "openai"},
	}
	for _, c := range cases {
		cfg, err := parseUpstream(t, c.args...)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.Upstream.openAI(openai.Config{}).Name(); got != c.want {
			t.Errorf("%v: adapter %q, want %q", c.args, got, c.want)
		}
	}
}

func TestUpstreamRefusesAFallbackModelNobodyServes(t *testing.T) {
	router := providers.NewRouter(providers.Route{Prefixes: []string{"claude"},
		Provider: anthropic.New(anthropic.Config{})})
	cfg, err := parseUpstream(t, "--fallback-models", "claude-haiku-4-5,gpt-4.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Upstream.wrap(router, nil); !errors.Is(err, errUsage) {
		t.Fatalf("err %v, want a usage error for gpt-4.1", err)
	}
	cfg, _ = parseUpstream(t, "--fallback-models", "claude-haiku-4-5")
	p, err := cfg.Upstream.wrap(router, nil)
	if err != nil {
		t.Fatal(err)
	}
	if mc, ok := p.(providers.ModelChecker); !ok || !mc.Serves("claude-x") || mc.Serves("gpt-4.1") {
		t.Fatal("the wrapped provider does not answer Serves as the router does")
	}
}

func TestUpstreamIdleConnsSizeTheClientsPool(t *testing.T) {
	cases := []struct {
		name string
		env  string
		args []string
		want int
	}{
		{"the default keeps 256", "", nil, 256},
		{"the flag sets it", "", []string{"--upstream-idle-conns", "7"}, 7},
		{"the environment sets it", "64", nil, 64},
		{"the flag wins over the environment", "64", []string{"--upstream-idle-conns", "9"}, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.env != "" {
				t.Setenv("STATED_UPSTREAM_IDLE_CONNS", c.env)
			}
			cfg, err := parseUpstream(t, c.args...)
			if err != nil {
				t.Fatal(err)
			}
			client, err := cfg.Upstream.httpClient()
			if err != nil {
				t.Fatal(err)
			}
			tr, ok := client.Transport.(*http.Transport)
			if !ok {
				t.Fatalf("transport %T, want an *http.Transport", client.Transport)
			}
			if tr.MaxIdleConnsPerHost != c.want {
				t.Fatalf("%d idle per host, want %d", tr.MaxIdleConnsPerHost, c.want)
			}
		})
	}
}
