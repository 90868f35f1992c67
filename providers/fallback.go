package providers

import (
	"context"
	"log/slog"
	"slices"
)

// MaxFallbackModels bounds the fallback list of one request, so that one turn
// cannot fan out into many provider calls.
const MaxFallbackModels = 4

// Fallback is a Provider that answers with the next model of an ordered list when
// a model fails before anything of its answer streamed with an error a retry
// could help (Retryable): overload, rate limits, outages. The list is the
// request's Fallback, or the Fallback's default list when the request has none;
// models the wrapped provider says it does not serve are skipped. Each model is
// sent to whichever provider the wrapped one routes it to (a Router), so a list
// may cross providers. Wrap a Retrier in a Fallback, so that each model gets its
// retries before the next is tried. Safe for concurrent use.
type Fallback struct {
	next     Provider
	defaults []string
	log      *slog.Logger
}

var (
	_ Provider     = (*Fallback)(nil)
	_ ModelChecker = (*Fallback)(nil)
)

// NewFallback returns a Fallback over next whose default list is defaults (at
// most MaxFallbackModels are used). log receives one info line per fallback and
// may be nil.
func NewFallback(next Provider, defaults []string, log *slog.Logger) *Fallback {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fallback{next: next, defaults: slices.Clone(defaults), log: log}
}

// Name is the name of the provider it wraps.
func (f *Fallback) Name() string { return f.next.Name() }

// Serves passes the question to the provider it wraps; true if that one does not
// say.
func (f *Fallback) Serves(model string) bool { return serves(f.next, model) }

// Complete tries req.Model, then each fallback model in order, until one answers
// or fails in a way the next cannot help: after a delta was passed on, with an
// error that is not Retryable, or with ctx ended. It returns that model's answer
// and error, as Provider documents; Response.Model names the model that answered
// (the model tried, when the provider did not say).
func (f *Fallback) Complete(ctx context.Context, req *Request,
	onDelta func(Delta)) (*Response, error) {
	models := f.models(req)
	var resp *Response
	var err error
	for i, model := range models {
		r := *req
		r.Model, r.Fallback = model, nil
		streamed := false
		resp, err = f.next.Complete(ctx, &r, func(d Delta) {
			streamed = true
			if onDelta != nil {
				onDelta(d)
			}
		})
		if resp != nil && resp.Model == "" {
			resp.Model = model
		}
		if err == nil || streamed || ctx.Err() != nil || !Retryable(err) {
			return resp, err
		}
		if i+1 < len(models) {
			f.log.Info("provider request falls back to the next model", "model", model,
				"next_model", models[i+1], "err", err)
		}
	}
	return resp, err
}

// models is req.Model followed by the fallback list, without repeats and without
// the models the wrapped provider does not serve.
func (f *Fallback) models(req *Request) []string {
	list := req.Fallback
	if len(list) == 0 {
		list = f.defaults
	}
	list = list[:min(len(list), MaxFallbackModels)]
	models := make([]string, 1, 1+len(list))
	models[0] = req.Model
	for _, m := range list {
		if m == "" || slices.Contains(models, m) {
			continue
		}
		if !serves(f.next, m) {
			f.log.Warn("fallback model not served here, skipped", "model", m)
			continue
		}
		models = append(models, m)
	}
	return models
}
