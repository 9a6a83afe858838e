package console

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"
)

// The schema pages, when Config.RegistryURL names a schema registry
// (Confluent's REST API: a Runnel broker's --registry-listen, or
// Confluent's Schema Registry).

// SchemaSubjects is the subject list (GET /api/schemas).
type SchemaSubjects struct {
	// Compatibility is the global compatibility level.
	Compatibility string           `json:"compatibility"`
	Subjects      []SubjectSummary `json:"subjects"`
}

// SubjectSummary is one subject of the registry.
type SubjectSummary struct {
	Subject       string `json:"subject"`
	Versions      []int  `json:"versions"`
	Compatibility string `json:"compatibility"` // "" when the global level applies
}

// Subject is one subject's page (GET /api/schemas/{subject}?version=N):
// a version of its schema (the latest by default) and the line diff from
// the version before it.
type Subject struct {
	SubjectSummary
	Version  int        `json:"version"`
	ID       int        `json:"id"`
	Type     string     `json:"type"`
	Schema   string     `json:"schema"`
	Previous int        `json:"previous,omitempty"` // 0 when Version is the first
	Diff     []DiffLine `json:"diff,omitempty"`
}

// DiffLine is a line of a diff: Op is " " (in both), "-" (only in the
// previous version) or "+" (only in this one).
type DiffLine struct {
	Op   string `json:"op"`
	Text string `json:"text"`
}

func (c *Console) registry() (*sr.Client, error) {
	if c.sr == nil {
		return nil, notFound("console: no schema registry configured (runnel console --schema-registry-url, or the broker's --registry-listen)")
	}
	return c.sr, nil
}

func (c *Console) schemas(ctx context.Context, _ *http.Request) (any, error) {
	reg, err := c.registry()
	if err != nil {
		return nil, err
	}
	subjects, err := reg.Subjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: schema registry: %w", err)
	}
	out := SchemaSubjects{Subjects: []SubjectSummary{}}
	for _, cr := range reg.Compatibility(ctx) {
		if cr.Err == nil {
			out.Compatibility = cr.Level.String()
		}
	}
	levels := map[string]string{}
	if len(subjects) > 0 {
		for _, cr := range reg.Compatibility(ctx, subjects...) {
			if cr.Err == nil {
				levels[cr.Subject] = cr.Level.String()
			}
		}
	}
	for _, s := range subjects {
		vs, err := reg.SubjectVersions(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("console: schema registry: versions of %q: %w", s, err)
		}
		out.Subjects = append(out.Subjects, SubjectSummary{Subject: s, Versions: vs, Compatibility: levels[s]})
	}
	slices.SortFunc(out.Subjects, func(a, b SubjectSummary) int { return cmp.Compare(a.Subject, b.Subject) })
	return out, nil
}

func (c *Console) subject(ctx context.Context, r *http.Request) (any, error) {
	reg, err := c.registry()
	if err != nil {
		return nil, err
	}
	name := r.PathValue("subject")
	vs, err := reg.SubjectVersions(ctx, name)
	if err != nil {
		if se, ok := errors.AsType[*sr.ResponseError](err); ok && se.StatusCode == http.StatusNotFound {
			return nil, notFound("console: no subject %q", name)
		}
		return nil, fmt.Errorf("console: schema registry: %w", err)
	}
	slices.Sort(vs)
	if len(vs) == 0 {
		return nil, notFound("console: subject %q has no versions", name)
	}
	out := Subject{SubjectSummary: SubjectSummary{Subject: name, Versions: vs}, Version: vs[len(vs)-1]}
	if s := r.URL.Query().Get("version"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(vs, v) {
			return nil, notFound("console: subject %q has no version %q", name, s)
		}
		out.Version = v
	}
	if crs := reg.Compatibility(ctx, name); len(crs) == 1 && crs[0].Err == nil {
		out.Compatibility = crs[0].Level.String()
	}
	cur, err := reg.SchemaByVersion(ctx, name, out.Version)
	if err != nil {
		return nil, fmt.Errorf("console: schema registry: %w", err)
	}
	out.ID, out.Type, out.Schema = cur.ID, cur.Type.String(), indentSchema(cur.Schema.Schema)
	if i := slices.Index(vs, out.Version); i > 0 {
		out.Previous = vs[i-1]
		prev, err := reg.SchemaByVersion(ctx, name, out.Previous)
		if err != nil {
			return nil, fmt.Errorf("console: schema registry: %w", err)
		}
		out.Diff = diffLines(indentSchema(prev.Schema.Schema), out.Schema)
	}
	return out, nil
}

// indentSchema indents a JSON schema (Avro's are JSON) so that a diff has
// lines to compare; another text is returned as it is.
func indentSchema(s string) string {
	var buf bytes.Buffer
	if json.Indent(&buf, []byte(s), "", "  ") != nil {
		return s
	}
	return buf.String()
}

// diffLines is the line diff from a to b by their longest common
// subsequence: schemas are small, so the quadratic table is too.
func diffLines(a, b string) []DiffLine {
	x, y := strings.Split(a, "\n"), strings.Split(b, "\n")
	// lcs[i][j] is the LCS length of x[i:] and y[j:].
	lcs := make([][]int, len(x)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(y)+1)
	}
	for i := len(x) - 1; i >= 0; i-- {
		for j := len(y) - 1; j >= 0; j-- {
			if x[i] == y[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []DiffLine
	i, j := 0, 0
	for i < len(x) || j < len(y) {
		switch {
		case i < len(x) && j < len(y) && x[i] == y[j]:
			out = append(out, DiffLine{" ", x[i]})
			i, j = i+1, j+1
		case j < len(y) && (i == len(x) || lcs[i][j+1] >= lcs[i+1][j]):
			out = append(out, DiffLine{"+", y[j]})
			j++
		default:
			out = append(out, DiffLine{"-", x[i]})
			i++
		}
	}
	return out
}
