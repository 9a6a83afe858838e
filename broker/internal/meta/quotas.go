package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Client quotas, as Kafka keeps them: for an entity — a user, a client id,
// a (user, client id) pair, or the defaults of those — a set of limits by
// name (producer_byte_rate, consumer_byte_rate, request_percentage, ...).
// The broker resolves which entity's quota applies to a connection
// (broker/quota.go); here they are only stored and replicated.

// QuotaName is one component of a quota entity: absent (the zero value),
// a name, or the default of its type.
type QuotaName struct {
	Set     bool   `json:"set,omitempty"`
	Default bool   `json:"default,omitempty"`
	Name    string `json:"name,omitempty"`
}

// Named is the component naming name.
func Named(name string) QuotaName { return QuotaName{Set: true, Name: name} }

// DefaultName is the component that stands for every name of its type
// without a quota of its own (Kafka's <default>).
func DefaultName() QuotaName { return QuotaName{Set: true, Default: true} }

func (n QuotaName) String() string {
	switch {
	case !n.Set:
		return ""
	case n.Default:
		return "<default>"
	}
	return n.Name
}

// QuotaEntity is what a quota applies to. At least one component is set;
// IP goes alone (connection_creation_rate).
type QuotaEntity struct {
	User     QuotaName `json:"user,omitzero"`
	ClientID QuotaName `json:"clientId,omitzero"`
	IP       QuotaName `json:"ip,omitzero"`
}

func (e QuotaEntity) String() string {
	var parts []string
	for _, c := range []struct {
		typ string
		n   QuotaName
	}{{"user", e.User}, {"client-id", e.ClientID}, {"ip", e.IP}} {
		if c.n.Set {
			parts = append(parts, c.typ+"="+c.n.String())
		}
	}
	return strings.Join(parts, ",")
}

// ErrInvalidQuotaEntity: an entity with no component, or an IP with
// another component.
var ErrInvalidQuotaEntity = errors.New("meta: invalid quota entity")

// Validate checks the entity's shape.
func (e QuotaEntity) Validate() error {
	if !e.User.Set && !e.ClientID.Set && !e.IP.Set {
		return fmt.Errorf("%w: no entity type", ErrInvalidQuotaEntity)
	}
	if e.IP.Set && (e.User.Set || e.ClientID.Set) {
		return fmt.Errorf("%w: ip goes with no other entity type", ErrInvalidQuotaEntity)
	}
	return nil
}

// QuotaAlteration changes one entity's quotas: Set values replace those
// keys, Remove keys are dropped.
type QuotaAlteration struct {
	Entity QuotaEntity        `json:"entity"`
	Set    map[string]float64 `json:"set,omitempty"`
	Remove []string           `json:"remove,omitempty"`
}

// Quotas are the client quotas by entity. A value is replaced, never
// edited, so views share the maps.
type Quotas map[QuotaEntity]map[string]float64

type quotaEntry struct {
	Entity QuotaEntity        `json:"entity"`
	Values map[string]float64 `json:"values"`
}

// MarshalJSON writes the quotas as a list (a JSON object's keys are
// strings), in a fixed order.
func (q Quotas) MarshalJSON() ([]byte, error) {
	entries := make([]quotaEntry, 0, len(q))
	for e, v := range q {
		entries = append(entries, quotaEntry{e, v})
	}
	slices.SortFunc(entries, func(a, b quotaEntry) int { return strings.Compare(a.Entity.String(), b.Entity.String()) })
	return json.Marshal(entries)
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (q *Quotas) UnmarshalJSON(data []byte) error {
	var entries []quotaEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		return err
	}
	*q = make(Quotas, len(entries))
	for _, e := range entries {
		(*q)[e.Entity] = e.Values
	}
	return nil
}

const opAlterQuotas = "alter-quotas"

// applyQuotas applies alterations, every one or none.
func (s *state) applyQuotas(alts []QuotaAlteration) error {
	for _, a := range alts {
		if err := a.Entity.Validate(); err != nil {
			return err
		}
	}
	q := maps.Clone(s.Quotas)
	if q == nil {
		q = make(Quotas)
	}
	for _, a := range alts {
		v := maps.Clone(q[a.Entity])
		if v == nil {
			v = make(map[string]float64)
		}
		for _, k := range a.Remove {
			delete(v, k)
		}
		maps.Copy(v, a.Set)
		if len(v) == 0 {
			delete(q, a.Entity)
		} else {
			q[a.Entity] = v
		}
	}
	s.Quotas = q
	return nil
}

// AlterQuotas replicates quota alterations. The caller checks the keys
// and values (the store does not know which are valid).
func (s *Store) AlterQuotas(ctx context.Context, alts []QuotaAlteration) error {
	if len(alts) == 0 {
		return nil
	}
	return s.propose(ctx, &command{Op: opAlterQuotas, Quotas: alts})
}
