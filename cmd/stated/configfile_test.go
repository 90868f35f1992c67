package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConfig writes a configuration file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stated.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// clearServeEnv unsets every variable serve reads, for the test's duration.
func clearServeEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "STATED_") || strings.HasPrefix(name, "ANTHROPIC_") ||
			strings.HasPrefix(name, "OPENAI_") {
			t.Setenv(name, "") // restored after the test
			os.Unsetenv(name)
		}
	}
}

func TestConfigPrecedence(t *testing.T) {
	const file = "max_tokens = 100\ndrain_timeout = \"10s\"\n" +
		"allow_origin = [\"https://a.test\", \"https://b.test\"]\n"
	cases := []struct {
		name    string
		file    string
		env     map[string]string
		args    []string
		tokens  int
		drain   time.Duration
		origins string
	}{
		{"the defaults apply when nothing sets a value", "", nil, nil,
			4096, 30 * time.Second, ""},
		{"the file wins over the defaults", file, nil, nil,
			100, 10 * time.Second, "https://a.test,https://b.test"},
		{"an environment variable wins over the file", file,
			map[string]string{"STATED_MAX_TOKENS": "200", "STATED_ALLOW_ORIGIN": "https://c.test"},
			nil, 200, 10 * time.Second, "https://c.test"},
		{"a flag wins over the environment and the file", file,
			map[string]string{"STATED_MAX_TOKENS": "200"},
			[]string{"--max-tokens", "300", "--drain-timeout", "1s"},
			300, time.Second, "https://a.test,https://b.test"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearServeEnv(t)
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			args := c.args
			if c.file != "" {
				args = append([]string{"--config", writeConfig(t, c.file)}, args...)
			}
			cfg, _, err := parseServe(args, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MaxTokens != c.tokens || cfg.DrainTimeout != c.drain || cfg.Origins != c.origins {
				t.Fatalf("max tokens %d, drain %s, origins %q; want %d, %s, %q",
					cfg.MaxTokens, cfg.DrainTimeout, cfg.Origins, c.tokens, c.drain, c.origins)
			}
		})
	}
}

func TestConfigFileSetsProviderCredentialsBelowTheEnvironment(t *testing.T) {
	clearServeEnv(t)
	path := writeConfig(t, "anthropic_api_key = \"from-file\"\n"+
		"anthropic_base_url = \"http://127.0.0.1:9/\"\n")
	cfg, _, err := parseServe([]string{"--config", path}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AnthropicKey != "from-file" || cfg.Provider != "anthropic" ||
		cfg.AnthropicURL != "http://127.0.0.1:9/" {
		t.Fatalf("key %q, provider %q, url %q", cfg.AnthropicKey, cfg.Provider, cfg.AnthropicURL)
	}
	t.Setenv("ANTHROPIC_API_KEY", "from-env")
	if cfg, _, err = parseServe([]string{"--config", path}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if cfg.AnthropicKey != "from-env" {
		t.Fatalf("key %q, want the variable's", cfg.AnthropicKey)
	}
}

func TestConfigFileIsNamedByFlagOrVariable(t *testing.T) {
	clearServeEnv(t)
	t.Setenv("STATED_CONFIG", writeConfig(t, "max_tokens = 111\n"))
	cfg, _, err := parseServe(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxTokens != 111 {
		t.Fatalf("STATED_CONFIG: max tokens %d, want 111", cfg.MaxTokens)
	}
	other := writeConfig(t, "max_tokens = 222\n")
	if cfg, _, err = parseServe([]string{"--config", other}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if cfg.MaxTokens != 222 {
		t.Fatalf("--config: max tokens %d, want 222", cfg.MaxTokens)
	}
}

func TestConfigFileErrorsNameTheKey(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"an unknown key is an error naming it", "max_token = 5\n", `unknown key "max_token"`},
		{"a key spelled with dashes suggests underscores", "max-tokens = 5\n",
			`did you mean max_tokens`},
		{"a section is an error naming it", "[server]\naddr = \"x:1\"\n",
			`unknown key "server"`},
		{"a value of the wrong kind names its key", "max_tokens = \"many\"\n", "max_tokens"},
		{"a duration without a unit names its key", "drain_timeout = 30\n", "drain_timeout"},
		{"the file cannot name another file", "config = \"other.toml\"\n",
			`unknown key "config"`},
		{"a value out of bounds is refused", "max_tokens = 1000000\n", "--max-tokens"},
		{"a file that is not TOML is refused", "addr = \n", "config file"},
		{"a date is not a setting's value", "addr = 2024-01-01\n", "addr"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clearServeEnv(t)
			_, _, err := parseServe([]string{"--config", writeConfig(t, c.file)}, io.Discard)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one containing %q", err, c.want)
			}
			if !errors.Is(err, errUsage) {
				t.Fatalf("error %v is not a usage error", err)
			}
		})
	}
}

func TestConfigFileMustExistAndBeSmall(t *testing.T) {
	clearServeEnv(t)
	missing := filepath.Join(t.TempDir(), "none.toml")
	if _, _, err := parseServe([]string{"--config", missing}, io.Discard); err == nil {
		t.Fatal("a missing file was accepted")
	}
	big := writeConfig(t, "# "+strings.Repeat("x", maxConfigFile)+"\n")
	_, _, err := parseServe([]string{"--config", big}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a file over the limit: %v", err)
	}
}

func TestPrintConfigMasksSecrets(t *testing.T) {
	clearServeEnv(t)
	const admin = "admin-0123456789abcdefghijkl"
	t.Setenv("OPENAI_API_KEY", "sk-openai-secret")
	path := writeConfig(t, "admin_key = \""+admin+"\"\n"+
		"anthropic_api_key = \"sk-ant-secret\"\n"+
		"nats = \"nats://user:natspass@127.0.0.1:4222,nats://tok3n@127.0.0.1:4223\"\n")
	out := printed(t, "--config", path)
	for _, secret := range []string{admin, "sk-ant-secret", "sk-openai-secret", "natspass",
		"tok3n"} {
		if strings.Contains(out, secret) {
			t.Errorf("the printed configuration shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{`admin_key = "********"`, `anthropic_api_key = "********"`,
		`openai_api_key = "********"`, "nats://user:xxxxx@127.0.0.1:4222"} {
		if !strings.Contains(out, want) {
			t.Errorf("the printed configuration lacks %s:\n%s", want, out)
		}
	}
}

// The printed configuration is a file serve reads back to the same configuration,
// so every setting has a key and the keys are the ones the file takes.
func TestPrintedConfigReadsBackTheSame(t *testing.T) {
	clearServeEnv(t)
	first := printed(t, "--max-tokens", "1234", "--drain-timeout", "7s",
		"--allow-origin", "https://a.test,https://b.test", "--sim-fault", "status=529@0.5",
		"--sim-manual-clock", "--guard-similarity", "0.75")
	path := writeConfig(t, first)
	again := printed(t, "--config", path)
	strip := func(s string) string { // the comment naming the file differs
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if !strings.HasPrefix(l, "#") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if strip(first) != strip(again) {
		t.Fatalf("read back differently:\n%s\n---\n%s", first, again)
	}
	if !strings.Contains(first, "max_tokens = 1234") || !strings.Contains(first,
		`sim_fault = "status=529@0.5"`) {
		t.Fatalf("the printed configuration lacks the flags given:\n%s", first)
	}
}

func printed(t *testing.T, args ...string) string {
	t.Helper()
	cfg, inv, err := parseServe(append(args, "--print-config"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !inv.printConfig {
		t.Fatal("--print-config not seen")
	}
	var out bytes.Buffer
	if err := printConfig(&out, cfg, inv); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// The file gives way to a flag's environment variable only if flagEnvName knows
// that variable: every flag's variable must be the one it names.
func TestEveryFlagHasTheEnvironmentVariableTheFileAssumes(t *testing.T) {
	clearServeEnv(t)
	var probe serveConfig
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	probe.flags(fs)
	fs.VisitAll(func(f *flag.Flag) {
		t.Run(f.Name, func(t *testing.T) {
			value := probeValue(f)
			t.Setenv(flagEnvName(f.Name), value)
			var cfg serveConfig
			again := flag.NewFlagSet("again", flag.ContinueOnError)
			cfg.flags(again)
			if got := again.Lookup(f.Name).Value.String(); got != value {
				t.Fatalf("with %s=%q the flag is %q: its variable has another name "+
					"(add it to flagEnv)", flagEnvName(f.Name), value, got)
			}
		})
	})
}

// probeValue returns a value for f that differs from its default and parses.
func probeValue(f *flag.Flag) string {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return "probe"
	}
	switch v := g.Get().(type) {
	case bool:
		return map[bool]string{true: "false", false: "true"}[v]
	case time.Duration:
		return (v + 7*time.Second).String()
	case int, int64, uint64, uint:
		if f.DefValue == "7" {
			return "8"
		}
		return "7"
	case float64:
		if f.DefValue == "0.25" {
			return "0.5"
		}
		return "0.25"
	}
	return "probe-" + f.Name
}
