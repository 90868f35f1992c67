package providers

import (
	"bytes"
	"slices"
	"sync"
)

// EncodedCache keeps the bytes an adapter encoded for the messages of one
// conversation, so that a request repeating the messages of the one before
// encodes only the new or changed ones. Entries are found by the adapter's
// format, the message's Key and a variant (the adapter's name for what else
// shapes the bytes, such as a cache breakpoint on the message), and are used
// only when the message is equal to the one they were encoded from, so a stale
// entry is never sent.
//
// A conversation keeps one cache for its life. Sweep, after each request, drops
// what that request did not use, so the cache holds at most the bytes of one
// request's messages. It is safe for concurrent use; the zero value is ready and
// a nil cache keeps nothing.
type EncodedCache struct {
	mu        sync.Mutex // guards entries, preambles and gen
	entries   map[encodedKey]*encodedEntry
	preambles map[encodedKey]*preambleEntry // key 0: no message's
	gen       uint64                        // requests swept so far
}

type encodedKey struct {
	format  string
	key     uint64
	variant string
}

type encodedEntry struct {
	msg  Message
	data []byte
	used uint64 // gen of the last request that used it
}

// Get returns the bytes stored for m in format and variant, and false when there
// are none or m is not the message they were encoded from. The bytes are the
// cache's: the caller copies them and never changes them.
func (c *EncodedCache) Get(format string, m *Message, variant string) ([]byte, bool) {
	if c == nil || m.Key == 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[encodedKey{format, m.Key, variant}]
	if e == nil || !sameMessage(&e.msg, m) {
		return nil, false
	}
	e.used = c.gen
	return e.data, true
}

// Put stores data as the bytes of m in format and variant. The cache keeps data:
// the caller must not change it afterwards.
func (c *EncodedCache) Put(format string, m *Message, variant string, data []byte) {
	if c == nil || m.Key == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[encodedKey]*encodedEntry)
	}
	msg := *m
	msg.ToolCalls = slices.Clone(m.ToolCalls)
	c.entries[encodedKey{format, m.Key, variant}] = &encodedEntry{msg: msg, data: data,
		used: c.gen}
}

// Sweep ends a request: it drops the entries the request neither used nor
// stored, preambles included.
func (c *EncodedCache) Sweep() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.used != c.gen {
			delete(c.entries, k)
		}
	}
	for k, e := range c.preambles {
		if e.used != c.gen {
			delete(c.preambles, k)
		}
	}
	c.gen++
}

// sameMessage compares two messages field by field. Texts shared between
// requests compare in constant time (same bytes, same address).
func sameMessage(a, b *Message) bool {
	return a.Key == b.Key && a.Role == b.Role && a.Text == b.Text &&
		a.ToolCallID == b.ToolCallID && a.IsError == b.IsError &&
		slices.Equal(a.ToolCalls, b.ToolCalls)
}

// preambleEntry is the bytes of a request's system prompt and tools, with the
// settings they were encoded from.
type preambleEntry struct {
	system string
	tools  []Tool
	data   []byte
	used   uint64
}

// GetPreamble returns the bytes stored for a request's system prompt and tools in
// format and variant, and false when there are none or they were encoded from
// another system prompt or other tools. They change only with a conversation's
// settings, so a conversation encodes them once. The bytes are the cache's: the
// caller copies them and never changes them.
func (c *EncodedCache) GetPreamble(format, variant, system string, tools []Tool) ([]byte,
	bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.preambles[encodedKey{format: format, variant: variant}]
	if e == nil || e.system != system || !slices.EqualFunc(e.tools, tools, sameTool) {
		return nil, false
	}
	e.used = c.gen
	return e.data, true
}

// PutPreamble stores data as the bytes of system and tools in format and
// variant. The cache keeps data and a copy of tools: the caller must not change
// data afterwards.
func (c *EncodedCache) PutPreamble(format, variant, system string, tools []Tool,
	data []byte) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.preambles == nil {
		c.preambles = make(map[encodedKey]*preambleEntry)
	}
	kept := make([]Tool, len(tools))
	for i, t := range tools {
		kept[i] = t
		kept[i].InputSchema = slices.Clone(t.InputSchema) // a schema's bytes may change
	}
	c.preambles[encodedKey{format: format, variant: variant}] = &preambleEntry{
		system: system, tools: kept, data: data, used: c.gen}
}

// sameTool compares two tools field by field.
func sameTool(a, b Tool) bool {
	return a.Name == b.Name && a.Description == b.Description &&
		bytes.Equal(a.InputSchema, b.InputSchema)
}
