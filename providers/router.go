package providers

import (
	"context"
	"fmt"
	"strings"
)

// Router is a Provider that sends each request to the provider serving its model,
// chosen by model-name prefix. Routes are tried in order; the first match wins.
type Router struct {
	routes []Route
}

// Route sends models whose name starts with one of Prefixes to Provider. An empty
// Prefixes list matches every model.
type Route struct {
	Prefixes []string
	Provider Provider
}

// ModelChecker is implemented by providers that know which models they serve; the
// session layer uses it to refuse a session for a model nobody serves.
type ModelChecker interface {
	Serves(model string) bool
}

var (
	_ Provider     = (*Router)(nil)
	_ ModelChecker = (*Router)(nil)
)

// NewRouter returns a router over routes.
func NewRouter(routes ...Route) *Router {
	return &Router{routes: routes}
}

// Name lists the wire formats of the routes.
func (r *Router) Name() string {
	names := make([]string, len(r.routes))
	for i, rt := range r.routes {
		names[i] = rt.Provider.Name()
	}
	return strings.Join(names, "+")
}

// Serves reports whether some route takes model.
func (r *Router) Serves(model string) bool {
	return r.pick(model) != nil
}

// Complete passes the request to the provider of its model, or fails without a
// call when there is none.
func (r *Router) Complete(ctx context.Context, req *Request, onDelta func(Delta)) (*Response, error) {
	p := r.pick(req.Model)
	if p == nil {
		return nil, &Error{Provider: "router", Type: "unknown_model",
			Message: fmt.Sprintf("no provider serves model %q", req.Model)}
	}
	return p.Complete(ctx, req, onDelta)
}

func (r *Router) pick(model string) Provider {
	for _, rt := range r.routes {
		if len(rt.Prefixes) == 0 {
			return rt.Provider
		}
		for _, p := range rt.Prefixes {
			if strings.HasPrefix(model, p) {
				return rt.Provider
			}
		}
	}
	return nil
}
