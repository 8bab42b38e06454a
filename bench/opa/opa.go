package opa

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

//go:embed policy.rego
var policy string

// Engine is policy.rego prepared once over one data document, as an OPA
// sidecar or library user would keep it: each decision is one Eval.
type Engine struct {
	query rego.PreparedEvalQuery
}

// NewEngine prepares the verdict query over data. The in-memory store is
// configured as OPA's own server configures it for speed: data is converted
// to OPA's AST once, on write, instead of on every read.
func NewEngine(ctx context.Context, data map[string]any) (*Engine, error) {
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false), inmem.OptReturnASTValuesOnRead(true))
	q, err := rego.New(
		rego.Query("data.partner.authz.verdict"),
		rego.Module("policy.rego", policy),
		rego.Store(store),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("prepare policy: %w", err)
	}
	return &Engine{query: q}, nil
}

// Verdict evaluates the policy for one input document (see Input).
func (e *Engine) Verdict(ctx context.Context, input map[string]any) (string, error) {
	rs, err := e.query.Eval(ctx, rego.EvalInput(input))
	if err != nil {
		return "", err
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return "", fmt.Errorf("policy gave no verdict: %v", rs)
	}
	v, ok := rs[0].Expressions[0].Value.(string)
	if !ok {
		return "", fmt.Errorf("verdict %v is not a string", rs[0].Expressions[0].Value)
	}
	return v, nil
}
