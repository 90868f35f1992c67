package session

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/storage"
)

// Preset is a tenant's named, versioned set of session settings: a system prompt,
// tools and a model policy, registered once. Sessions opened by its name carry
// only what is new in their first frame, and every session of one preset version
// shares one cached prompt prefix with the provider.
//
// Versions are immutable: registering different content under a name adds the
// next version; registering the same content again returns the version that
// holds it.
type Preset struct {
	Name      string           `json:"name"`
	Version   int              `json:"version"`
	Model     string           `json:"model,omitempty"`
	MaxTokens int              `json:"max_tokens,omitempty"`
	System    string           `json:"system,omitempty"`
	Tools     []providers.Tool `json:"tools,omitempty"`
	Context   ContextPolicy    `json:"context"`
	// Digest names the content (everything but Name, Version and Created).
	Digest  string    `json:"digest"`
	Created time.Time `json:"created"`
}

// presetHead is the record that names a preset's latest version.
type presetHead struct {
	Version int    `json:"version"`
	Digest  string `json:"digest"`
}

// maxPresetName bounds a preset's name.
const maxPresetName = 64

// The KV keys of presets: "preset/<tenant>/<name>" holds the head and
// "preset/<tenant>/<name>/<version, 10 digits>" each version.
func presetHeadKey(tenant, name string) string { return "preset/" + tenant + "/" + name }

func presetVersionKey(tenant, name string, v int) string {
	return fmt.Sprintf("preset/%s/%s/%010d", tenant, name, v)
}

// checkPresetName validates a preset name: 1 to 64 letters, digits, '_', '-', '.'.
func checkPresetName(name string) error {
	if name == "" || len(name) > maxPresetName {
		return fmt.Errorf("%w: preset name must have 1 to %d bytes", ErrInvalid, maxPresetName)
	}
	for _, r := range name {
		ok := r == '_' || r == '-' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			r >= '0' && r <= '9'
		if !ok {
			return fmt.Errorf("%w: preset name %q may only hold letters, digits, _, - and .",
				ErrInvalid, name)
		}
	}
	return nil
}

// PutPreset registers p for tenant and returns it as stored, with its version:
// a new version when the content differs from the latest, the latest otherwise.
// Model, max_tokens and the context policy take the server's defaults when zero,
// so a version means the same thing whatever the defaults become. Errors:
// ErrInvalid, ErrClosed when the manager has no preset store, or a storage error.
func (m *Manager) PutPreset(ctx context.Context, tenant string, p Preset) (Preset, error) {
	if m.cfg.Presets == nil {
		return Preset{}, fmt.Errorf("%w: this server keeps no presets", ErrInvalid)
	}
	if err := m.normalizePreset(&p); err != nil {
		return Preset{}, err
	}
	for attempt := 0; attempt < 8; attempt++ {
		got, err := m.putPresetOnce(ctx, tenant, p)
		if !errors.Is(err, storage.ErrRevisionConflict) {
			return got, err
		}
	}
	return Preset{}, fmt.Errorf("session: preset %q: too many concurrent writers", p.Name)
}

// normalizePreset checks p as a session's settings and fills its defaults and
// digest.
func (m *Manager) normalizePreset(p *Preset) error {
	if err := checkPresetName(p.Name); err != nil {
		return err
	}
	st := Settings{Model: p.Model, MaxTokens: p.MaxTokens, System: p.System,
		Tools: append([]providers.Tool(nil), p.Tools...), Context: p.Context}
	if err := m.normalizeSettings(&st); err != nil {
		return err
	}
	p.Model, p.MaxTokens, p.Tools, p.Context = st.Model, st.MaxTokens, st.Tools, st.Context
	p.Version, p.Created = 0, time.Time{}
	p.Digest = ""
	content, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("session: encode preset: %w", err)
	}
	if len(content) > storage.MaxValueBytes-1024 {
		return fmt.Errorf("%w: preset over %d bytes", ErrInvalid, storage.MaxValueBytes-1024)
	}
	sum := sha256.Sum256(content)
	p.Digest = hex.EncodeToString(sum[:])
	return nil
}

// putPresetOnce is one compare-and-swap attempt of PutPreset.
func (m *Manager) putPresetOnce(ctx context.Context, tenant string, p Preset) (Preset, error) {
	kv := m.cfg.Presets
	head, rev, err := m.presetHead(ctx, tenant, p.Name)
	if err != nil {
		return Preset{}, err
	}
	if head.Version > 0 && head.Digest == p.Digest {
		return m.GetPreset(ctx, tenant, p.Name, head.Version)
	}
	p.Version, p.Created = head.Version+1, m.now().UTC()
	data, err := json.Marshal(p)
	if err != nil {
		return Preset{}, fmt.Errorf("session: encode preset: %w", err)
	}
	_, err = kv.CompareAndPut(ctx, presetVersionKey(tenant, p.Name, p.Version), data, 0)
	if errors.Is(err, storage.ErrRevisionConflict) {
		// The version exists without its head: a writer stopped between the two
		// writes, or races this one. Move the head to it and try again.
		existing, gerr := m.GetPreset(ctx, tenant, p.Name, p.Version)
		if gerr != nil {
			return Preset{}, gerr
		}
		if _, herr := m.putPresetHead(ctx, tenant, existing, rev); herr != nil &&
			!errors.Is(herr, storage.ErrRevisionConflict) {
			return Preset{}, herr
		}
		return Preset{}, err
	}
	if err != nil {
		return Preset{}, fmt.Errorf("session: store preset: %w", err)
	}
	if _, err := m.putPresetHead(ctx, tenant, p, rev); err != nil {
		return Preset{}, err
	}
	m.log.Info("preset registered", "tenant", tenant, "preset", p.Name, "version", p.Version)
	return p, nil
}

// presetHead reads the head of a preset; a missing one is version 0, revision 0.
func (m *Manager) presetHead(ctx context.Context, tenant, name string) (presetHead,
	uint64, error) {
	var head presetHead
	data, rev, err := m.cfg.Presets.Get(ctx, presetHeadKey(tenant, name))
	switch {
	case errors.Is(err, storage.ErrKeyNotFound):
		return head, 0, nil
	case err != nil:
		return head, 0, fmt.Errorf("session: read preset %q: %w", name, err)
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return head, 0, fmt.Errorf("session: decode preset %q: %w", name, err)
	}
	return head, rev, nil
}

func (m *Manager) putPresetHead(ctx context.Context, tenant string, p Preset,
	rev uint64) (uint64, error) {
	data, err := json.Marshal(presetHead{Version: p.Version, Digest: p.Digest})
	if err != nil {
		return 0, fmt.Errorf("session: encode preset head: %w", err)
	}
	return m.cfg.Presets.CompareAndPut(ctx, presetHeadKey(tenant, p.Name), data, rev)
}

// GetPreset returns version (0: the latest) of tenant's preset name. Errors:
// ErrPresetNotFound, ErrInvalid, or a storage error.
func (m *Manager) GetPreset(ctx context.Context, tenant, name string, version int) (Preset,
	error) {
	if m.cfg.Presets == nil {
		return Preset{}, ErrPresetNotFound
	}
	if err := checkPresetName(name); err != nil {
		return Preset{}, err
	}
	if version < 0 {
		return Preset{}, fmt.Errorf("%w: negative preset version", ErrInvalid)
	}
	if version == 0 {
		head, _, err := m.presetHead(ctx, tenant, name)
		if err != nil {
			return Preset{}, err
		}
		if head.Version == 0 {
			return Preset{}, fmt.Errorf("%w: %q", ErrPresetNotFound, name)
		}
		version = head.Version
	}
	if p, ok := m.presets.Load(presetVersionKey(tenant, name, version)); ok {
		return p.(Preset), nil
	}
	data, _, err := m.cfg.Presets.Get(ctx, presetVersionKey(tenant, name, version))
	if errors.Is(err, storage.ErrKeyNotFound) {
		return Preset{}, fmt.Errorf("%w: %q version %d", ErrPresetNotFound, name, version)
	}
	if err != nil {
		return Preset{}, fmt.Errorf("session: read preset %q: %w", name, err)
	}
	var p Preset
	if err := json.Unmarshal(data, &p); err != nil {
		return Preset{}, fmt.Errorf("session: decode preset %q: %w", name, err)
	}
	m.presets.Store(presetVersionKey(tenant, name, version), p)
	return p, nil
}

// ListPresets returns the latest version of each of tenant's presets, by name.
func (m *Manager) ListPresets(ctx context.Context, tenant string) ([]Preset, error) {
	if m.cfg.Presets == nil {
		return nil, nil
	}
	prefix := "preset/" + tenant + "/"
	entries, err := m.cfg.Presets.List(ctx, prefix, "", 0)
	if err != nil {
		return nil, fmt.Errorf("session: list presets: %w", err)
	}
	var out []Preset
	for _, e := range entries {
		name := strings.TrimPrefix(e.Key, prefix)
		if strings.Contains(name, "/") {
			continue // a version record
		}
		var head presetHead
		if json.Unmarshal(e.Value, &head) != nil || head.Version == 0 {
			continue
		}
		p, err := m.GetPreset(ctx, tenant, name, head.Version)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// applyPreset fills st from the preset it names. The session keeps its own copy:
// its settings stay fixed for its life. The open frame may set the model,
// max_tokens and context policy over the preset's, not its system or tools.
func (m *Manager) applyPreset(ctx context.Context, tenant string, st *Settings) error {
	if st.Preset == "" {
		if st.PresetVersion != 0 {
			return fmt.Errorf("%w: preset_version without preset", ErrInvalid)
		}
		return nil
	}
	if st.System != "" || len(st.Tools) > 0 {
		return fmt.Errorf("%w: a session opened by preset takes its system and tools "+
			"from the preset", ErrInvalid)
	}
	p, err := m.GetPreset(ctx, tenant, st.Preset, st.PresetVersion)
	if err != nil {
		return err
	}
	st.PresetVersion = p.Version
	// The session gets its own copy: normalizing compacts tool schemas in place.
	st.System, st.Tools = p.System, append([]providers.Tool(nil), p.Tools...)
	if st.Model == "" {
		st.Model = p.Model
	}
	if st.MaxTokens == 0 {
		st.MaxTokens = p.MaxTokens
	}
	st.Context = st.Context.over(p.Context)
	return nil
}

// over returns p with its zero fields taken from base.
func (p ContextPolicy) over(base ContextPolicy) ContextPolicy {
	pick := func(v, b int) int {
		if v != 0 {
			return v
		}
		return b
	}
	out := ContextPolicy{
		RollupHighTokens: pick(p.RollupHighTokens, base.RollupHighTokens),
		RollupLowTokens:  pick(p.RollupLowTokens, base.RollupLowTokens),
		RationAfterTurns: pick(p.RationAfterTurns, base.RationAfterTurns),
		RationMinTokens:  pick(p.RationMinTokens, base.RationMinTokens),
		DedupMinTokens:   pick(p.DedupMinTokens, base.DedupMinTokens),
		SummaryModel:     p.SummaryModel,
	}
	if out.SummaryModel == "" {
		out.SummaryModel = base.SummaryModel
	}
	return out
}
