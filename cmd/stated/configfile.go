package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The configuration file of "stated serve" is TOML with one top-level key per
// flag: the flag's name with underscores for dashes (--max-tokens is max_tokens,
// --sim-latency-first-token is sim_latency_first_token), plus the provider
// credentials that otherwise come only from the environment (anthropic_api_key,
// anthropic_base_url, openai_api_key, openai_base_url). Values are TOML strings,
// integers, floats or booleans as the flag takes them; durations are strings such
// as "30s"; lists are arrays or comma-separated strings.
//
// Precedence, highest first: a flag on the command line, its environment
// variable, the file, the default. The file is named by --config or
// STATED_CONFIG. docs/quickstart.md documents the format.

// maxConfigFile bounds the configuration file.
const maxConfigFile = 1 << 20

// Keys of the file that are not flags: they set fields read from the
// environment, which wins over the file.
var envOnlyKeys = []struct {
	key, env string
	field    func(*serveConfig) *string
}{
	{"anthropic_api_key", "ANTHROPIC_API_KEY",
		func(c *serveConfig) *string { return &c.AnthropicKey }},
	{"anthropic_base_url", "ANTHROPIC_BASE_URL",
		func(c *serveConfig) *string { return &c.AnthropicURL }},
	{"openai_api_key", "OPENAI_API_KEY", func(c *serveConfig) *string { return &c.OpenAIKey }},
	{"openai_base_url", "OPENAI_BASE_URL", func(c *serveConfig) *string { return &c.OpenAIURL }},
}

// flagEnv names the environment variables that do not follow the rule STATED_
// and the flag's name in upper case with underscores.
var flagEnv = map[string]string{
	"sim-fault": "STATED_SIM_FAULTS",
}

// Flags of serve that are about this invocation, not the server.
const (
	configFlag      = "config"
	printConfigFlag = "print-config"
)

// serveInvocation is what the command line asks of serve besides the
// configuration itself.
type serveInvocation struct {
	configFile  string // the file read, or ""
	printConfig bool
	fs          *flag.FlagSet
}

// parseServe reads serve's configuration from the command line, the environment
// and the configuration file, in that order of precedence, and resolves it.
func parseServe(args []string, stderr io.Writer) (*serveConfig, *serveInvocation, error) {
	cfg := &serveConfig{}
	fs := flag.NewFlagSet("stated serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.flags(fs)
	inv := &serveInvocation{fs: fs}
	fs.StringVar(&inv.configFile, configFlag, env("STATED_CONFIG", ""),
		"TOML configuration file; flags and environment variables win over it")
	fs.BoolVar(&inv.printConfig, printConfigFlag, false,
		"print the effective configuration as TOML, secrets masked, and exit")
	if err := fs.Parse(args); err != nil {
		return nil, nil, badFlags(err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if inv.configFile != "" {
		if err := cfg.applyFile(fs, inv.configFile); err != nil {
			return nil, nil, err
		}
	}
	if err := cfg.resolve(); err != nil {
		return nil, nil, err
	}
	return cfg, inv, nil
}

// applyFile sets, from the file at path, every setting that neither the command
// line nor the environment set. A key that names no setting is an error naming
// it, so a misspelling does not go unnoticed.
func (c *serveConfig) applyFile(fs *flag.FlagSet, path string) error {
	values, err := readConfigFile(path)
	if err != nil {
		return err
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })

	for _, key := range sortedKeys(values) {
		if err := c.applyKey(fs, onCommandLine, key, values[key]); err != nil {
			return fmt.Errorf("%w: config file %s: %v", errUsage, path, err)
		}
	}
	return nil
}

func (c *serveConfig) applyKey(fs *flag.FlagSet, onCommandLine map[string]bool, key string,
	v any) error {
	text, err := configText(v)
	if err != nil {
		return fmt.Errorf("%s: %v", key, err)
	}
	for _, k := range envOnlyKeys {
		if k.key == key {
			if _, set := os.LookupEnv(k.env); !set {
				*k.field(c) = text
			}
			return nil
		}
	}
	name := strings.ReplaceAll(key, "_", "-")
	f := fs.Lookup(name)
	if f == nil || name == configFlag || name == printConfigFlag || strings.Contains(key, "-") {
		return unknownKey(fs, key)
	}
	if _, set := os.LookupEnv(flagEnvName(name)); set || onCommandLine[name] {
		return nil
	}
	if err := fs.Set(name, text); err != nil {
		return fmt.Errorf("%s = %q: %v", key, text, err)
	}
	return nil
}

func unknownKey(fs *flag.FlagSet, key string) error {
	if alt := strings.ReplaceAll(key, "-", "_"); alt != key && fs.Lookup(key) != nil {
		return fmt.Errorf("unknown key %q (did you mean %s?)", key, alt)
	}
	return fmt.Errorf("unknown key %q", key)
}

// readConfigFile decodes a TOML file of at most maxConfigFile bytes whose keys
// are all at the top level.
func readConfigFile(path string) (map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: config file: %v", errUsage, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: config file %s: %v", errUsage, path, err)
	}
	if len(data) > maxConfigFile {
		return nil, fmt.Errorf("%w: config file %s: larger than %d bytes", errUsage, path,
			maxConfigFile)
	}
	values := map[string]any{}
	if _, err := toml.Decode(string(data), &values); err != nil {
		return nil, fmt.Errorf("%w: config file %s: %v", errUsage, path, err)
	}
	for key, v := range values {
		if _, table := v.(map[string]any); table {
			return nil, fmt.Errorf("%w: config file %s: unknown key %q: the file has no "+
				"sections; write each setting at the top level", errUsage, path, key)
		}
	}
	return values, nil
}

// configText turns a TOML value into the text its flag parses.
func configText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			s, err := configText(e)
			if err != nil || strings.Contains(s, ",") {
				return "", errors.New("a list holds strings or numbers without commas")
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("a %T is not a setting's value", v)
}

// flagEnvName is the environment variable of the serve flag name.
func flagEnvName(name string) string {
	if e, ok := flagEnv[name]; ok {
		return e
	}
	return "STATED_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// printConfig writes the effective configuration as a TOML file that serve
// reads back, secrets replaced by a mask.
func printConfig(w io.Writer, cfg *serveConfig, inv *serveInvocation) error {
	values := map[string]any{}
	inv.fs.VisitAll(func(f *flag.Flag) {
		if f.Name == configFlag || f.Name == printConfigFlag {
			return
		}
		values[strings.ReplaceAll(f.Name, "-", "_")] = flagValue(f)
	})
	for _, k := range envOnlyKeys {
		values[k.key] = *k.field(cfg)
	}
	for key, v := range values {
		if s, ok := v.(string); ok && s != "" {
			values[key] = maskSecret(key, s)
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# The effective configuration of stated serve. Secrets are masked.\n")
	if inv.configFile != "" {
		fmt.Fprintf(&buf, "# Read from %s, then the environment and the command line.\n",
			inv.configFile)
	}
	if err := toml.NewEncoder(&buf).Encode(values); err != nil {
		return fmt.Errorf("print config: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// secretMask stands in for a secret in printed configuration.
const secretMask = "********"

// maskSecret returns the value of key as it may be printed: a credential (API
// keys, the admin key, secrets, passwords) as the mask, and the password of a
// URL (nats://user:pass@host) as xxxxx.
func maskSecret(key, value string) string {
	if key == "key" || strings.HasSuffix(key, "_key") || strings.HasSuffix(key, "_keys") ||
		strings.Contains(key, "secret") || strings.Contains(key, "password") {
		return secretMask
	}
	parts := strings.Split(value, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
			if _, has := u.User.Password(); !has {
				u.User = url.User(secretMask) // a token in the user name
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

// flagValue returns a flag's value as the TOML value that sets it: lists as
// comma-separated strings, as their flags print them.
func flagValue(f *flag.Flag) any {
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return f.Value.String()
	}
	switch v := g.Get().(type) {
	case time.Duration:
		return v.String()
	case string, bool, int, int64, uint64, float64:
		return v
	case uint:
		return uint64(v)
	}
	return f.Value.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
