package finops

import (
	"fmt"
	"regexp"
	"strings"
)

// maxMatchDepth bounds how deeply "or" and "and" clauses nest.
const maxMatchDepth = 8

// matchRule is one clause of a model's match rules, in the format of the price
// source: exactly one field is set. The rules recognize the names a model is
// called by besides its id, such as dated snapshots ("claude-sonnet-4-5-20250929").
type matchRule struct {
	Equals     string      `json:"equals,omitempty"`
	StartsWith string      `json:"starts_with,omitempty"`
	EndsWith   string      `json:"ends_with,omitempty"`
	Contains   string      `json:"contains,omitempty"`
	Regex      string      `json:"regex,omitempty"`
	Or         []matchRule `json:"or,omitempty"`
	And        []matchRule `json:"and,omitempty"`

	re *regexp.Regexp // compiled Regex
}

// compile checks that the rule has exactly one operator, nests at most
// maxMatchDepth deep and has a valid regular expression, and compiles it.
func (r *matchRule) compile(depth int) error {
	if depth > maxMatchDepth {
		return fmt.Errorf("match rules nest deeper than %d", maxMatchDepth)
	}
	set := 0
	for _, s := range []string{r.Equals, r.StartsWith, r.EndsWith, r.Contains, r.Regex} {
		if s != "" {
			set++
		}
	}
	if len(r.Or) > 0 {
		set++
	}
	if len(r.And) > 0 {
		set++
	}
	if set != 1 {
		return fmt.Errorf("a match rule needs exactly one operator, has %d", set)
	}

	if r.Regex != "" {
		re, err := regexp.Compile(r.Regex)
		if err != nil {
			return fmt.Errorf("match regex: %w", err)
		}
		r.re = re
	}
	for _, list := range [][]matchRule{r.Or, r.And} {
		for i := range list {
			if err := list[i].compile(depth + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// matches reports whether model satisfies the rule. The rule must be compiled.
func (r *matchRule) matches(model string) bool {
	switch {
	case r.Equals != "":
		return model == r.Equals
	case r.StartsWith != "":
		return strings.HasPrefix(model, r.StartsWith)
	case r.EndsWith != "":
		return strings.HasSuffix(model, r.EndsWith)
	case r.Contains != "":
		return strings.Contains(model, r.Contains)
	case r.re != nil:
		return r.re.MatchString(model)
	case len(r.Or) > 0:
		for i := range r.Or {
			if r.Or[i].matches(model) {
				return true
			}
		}
		return false
	case len(r.And) > 0:
		for i := range r.And {
			if !r.And[i].matches(model) {
				return false
			}
		}
		return true
	}
	return false
}
