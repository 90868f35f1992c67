package transport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/stated-dev/stated/providers"
	"github.com/stated-dev/stated/session"
)

// thread is a request's conversation in the session's terms: the settings a
// session for it has (normalized), the items the request carries, and where the
// new ones start. Items before newFrom are history a stateless client re-sends;
// the ones from newFrom on are its new turns.
type thread struct {
	settings session.Settings
	items    []session.Item
	newFrom  int
}

// newItems returns the request's new turns.
func (t *thread) newItems() []session.Item { return t.items[t.newFrom:] }

// splitAtLastAnswer sets newFrom after the last answer, so that the new turns are
// what the client added since the model last spoke.
func (t *thread) splitAtLastAnswer() {
	t.newFrom = 0
	for i, it := range t.items {
		if it.Kind == session.KindAssistant {
			t.newFrom = i + 1
		}
	}
}

// historyKey names the content of a conversation up to some point: a SHA-256
// chain that starts from the session settings and folds in one item at a time.
// The same settings and items give the same key on any node and after a restart;
// turn IDs are left out, since a stateless client does not keep them.
type historyKey [sha256.Size]byte

// historyKeyVersion starts every chain; changing the chain's encoding changes it,
// so old keys simply stop matching.
const historyKeyVersion = "stated/openai-history/v1\n"

// settingsKey starts the chain of a conversation held with settings st.
func settingsKey(st *session.Settings) historyKey {
	data, _ := json.Marshal(st) // Settings always encodes
	return sha256.Sum256(append([]byte(historyKeyVersion), data...))
}

// canonicalItem is the content of an item that the history key covers.
type canonicalItem struct {
	Kind    session.Kind         `json:"k"`
	Text    string               `json:"t"`
	Calls   []providers.ToolCall `json:"c,omitempty"`
	CallID  string               `json:"i,omitempty"`
	IsError bool                 `json:"e,omitempty"`
}

// fold returns the key of the history k names followed by it.
func (k historyKey) fold(it *session.Item) historyKey {
	data, _ := json.Marshal(canonicalItem{Kind: it.Kind, Text: it.Text, Calls: it.ToolCalls,
		CallID: it.ToolCallID, IsError: it.IsError})
	h := sha256.New()
	h.Write(k[:])
	h.Write(data)
	var out historyKey
	h.Sum(out[:0])
	return out
}

func (k historyKey) String() string { return hex.EncodeToString(k[:]) }

// chainKeys returns the history keys of every prefix of t's items: keys[i] names
// the settings and the first i items.
func (t *thread) chainKeys() []historyKey {
	keys := make([]historyKey, len(t.items)+1)
	keys[0] = settingsKey(&t.settings)
	for i := range t.items {
		keys[i+1] = keys[i].fold(&t.items[i])
	}
	return keys
}

// answerItem is the item a client will send back for a stored answer, or false
// for an answer that a client cannot build on (it failed or was cut).
func answerItem(e *session.Event) (session.Item, bool) {
	if e.Status != providers.StatusComplete || e.Text == "" && len(e.ToolCalls) == 0 {
		return session.Item{}, false
	}
	return session.Item{Kind: session.KindAssistant, Text: e.Text, ToolCalls: e.ToolCalls}, true
}

// itemsOf returns the events of a log as items, to carry them into a new session:
// failed answers are left out and the tool calls of a cut answer dropped, as the
// layout leaves them out of provider requests.
func itemsOf(events []session.Event) []session.Item {
	items := make([]session.Item, 0, len(events))
	for i := range events {
		e := &events[i]
		switch e.Kind {
		case session.KindUser, session.KindToolResult:
			items = append(items, session.Item{Kind: e.Kind, TurnID: e.TurnID, Text: e.Text,
				ToolCallID: e.ToolCallID, IsError: e.IsError})
		case session.KindAssistant:
			it := session.Item{Kind: e.Kind, Text: e.Text}
			if e.Status == providers.StatusComplete {
				it.ToolCalls = e.ToolCalls
			}
			if it.Text != "" || len(it.ToolCalls) > 0 {
				items = append(items, it)
			}
		}
	}
	return items
}

// sameSettings reports whether two normalized settings are the same, by their
// encoding, which is what a session stores.
func sameSettings(a, b *session.Settings) bool {
	da, _ := json.Marshal(a)
	db, _ := json.Marshal(b)
	return bytes.Equal(da, db)
}
