package transport

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/stated-dev/stated/storage"
)

// Key spaces of the OpenAI-compatible API in the KV space. Each key goes on with
// the tenant (path-escaped), a slash and the ID, so tenants never share an entry.
const (
	historyKeys      = "openai/history/"
	responseKeys     = "openai/response/"
	conversationKeys = "openai/conversation/"
)

// openaiIndex keeps the API's mappings durably: a history key (the hash of a
// stateless client's conversation so far) to the point of the session holding it,
// a response ID to the turns and answer it stands for, a conversation ID to the
// session holding its items.
type openaiIndex struct {
	kv storage.KV
}

// position is a point of a session's log: the log up to seq.
type position struct {
	Session string `json:"session"`
	Seq     uint64 `json:"seq"`
}

// responseRecord is what a response ID stands for. The response's input is the
// events from InputFrom to After; its answer is the first answer after After.
type responseRecord struct {
	ID           string            `json:"id"`
	Session      string            `json:"session"`
	InputFrom    uint64            `json:"input_from"`
	After        uint64            `json:"after"`
	Created      int64             `json:"created_at"`
	Store        bool              `json:"store"`
	NoAnswer     bool              `json:"no_answer,omitempty"` // created with generate false
	Previous     string            `json:"previous_response_id,omitempty"`
	Conversation string            `json:"conversation,omitempty"`
	Instructions *string           `json:"instructions,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// conversationRecord is what a conversation ID stands for: the session holding
// its items. A response with other settings moves the conversation to a new
// session carrying its items.
type conversationRecord struct {
	ID       string            `json:"id"`
	Session  string            `json:"session"`
	Created  int64             `json:"created_at"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

func indexKey(space, tenant, id string) string {
	return space + url.PathEscape(tenant) + "/" + id
}

// get reads the JSON value of key into v. found is false when the key is absent.
func (x *openaiIndex) get(ctx context.Context, key string, v any) (rev uint64, found bool,
	err error) {
	data, rev, err := x.kv.Get(ctx, key)
	if errors.Is(err, storage.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("transport: read %s: %w", key, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return 0, false, fmt.Errorf("transport: decode %s: %w", key, err)
	}
	return rev, true, nil
}

// put writes v as the JSON value of key: unconditionally when rev is nil,
// otherwise only if the key's revision is *rev (0: absent).
func (x *openaiIndex) put(ctx context.Context, key string, v any, rev *uint64) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("transport: encode %s: %w", key, err)
	}
	if rev == nil {
		_, err = x.kv.Put(ctx, key, data)
	} else {
		_, err = x.kv.CompareAndPut(ctx, key, data, *rev)
	}
	if err != nil {
		return fmt.Errorf("transport: write %s: %w", key, err)
	}
	return nil
}

func (x *openaiIndex) history(ctx context.Context, tenant string, k historyKey) (
	position, bool, error) {
	var p position
	_, found, err := x.get(ctx, indexKey(historyKeys, tenant, k.String()), &p)
	return p, found, err
}

// putHistory records that the history named k is the log of p.Session up to p.Seq.
// A later answer with the same history replaces the entry.
func (x *openaiIndex) putHistory(ctx context.Context, tenant string, k historyKey,
	p position) error {
	return x.put(ctx, indexKey(historyKeys, tenant, k.String()), p, nil)
}

func (x *openaiIndex) response(ctx context.Context, tenant, id string) (
	*responseRecord, bool, error) {
	rec := new(responseRecord)
	_, found, err := x.get(ctx, indexKey(responseKeys, tenant, id), rec)
	return rec, found, err
}

func (x *openaiIndex) putResponse(ctx context.Context, tenant string,
	rec *responseRecord) error {
	return x.put(ctx, indexKey(responseKeys, tenant, rec.ID), rec, nil)
}

func (x *openaiIndex) deleteResponse(ctx context.Context, tenant, id string) error {
	return x.kv.Delete(ctx, indexKey(responseKeys, tenant, id))
}

// conversation reads a conversation record and its revision, for a later
// compare-and-swap.
func (x *openaiIndex) conversation(ctx context.Context, tenant, id string) (
	*conversationRecord, uint64, bool, error) {
	rec := new(conversationRecord)
	rev, found, err := x.get(ctx, indexKey(conversationKeys, tenant, id), rec)
	return rec, rev, found, err
}

// putConversation writes rec if the record's revision is still rev (0: new). A
// lost race yields an error matching storage.ErrRevisionConflict.
func (x *openaiIndex) putConversation(ctx context.Context, tenant string,
	rec *conversationRecord, rev uint64) error {
	return x.put(ctx, indexKey(conversationKeys, tenant, rec.ID), rec, &rev)
}

func (x *openaiIndex) deleteConversation(ctx context.Context, tenant, id string) error {
	return x.kv.Delete(ctx, indexKey(conversationKeys, tenant, id))
}
