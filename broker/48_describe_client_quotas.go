package broker

import (
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// DescribeClientQuotas v0-v1: the client quotas of the metadata whose
// entities match every component of the filter — a type with an exact
// name, its default, or any name of it — and, with Strict, name no other
// type. No components describes every entity (or, strict, none). A type
// filtered twice, an unknown type, an exact match without a name, or ip
// with user or client-id is INVALID_REQUEST, as Kafka's.

func init() { register(48, 0, 1, handleDescribeClientQuotas) }

// Quota entity types.
const (
	entityUser     = "user"
	entityClientID = "client-id"
	entityIP       = "ip"
)

func handleDescribeClientQuotas(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	fail := func(msg string) (finisher, error) {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, &msg
		return respond(resp)
	}
	if !c.allowedCluster(kmsg.ACLOperationDescribeConfigs) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return respond(resp)
	}
	seen := map[string]bool{}
	for _, f := range r.Components {
		switch {
		case f.EntityType != entityUser && f.EntityType != entityClientID && f.EntityType != entityIP:
			return fail("unknown quota entity type " + f.EntityType)
		case seen[f.EntityType]:
			return fail("entity type " + f.EntityType + " filtered twice")
		case f.MatchType == kmsg.QuotasMatchTypeExact && f.Match == nil:
			return fail("an exact match of " + f.EntityType + " without a name")
		case f.MatchType > kmsg.QuotasMatchTypeAny || f.MatchType < kmsg.QuotasMatchTypeExact:
			return fail("unknown match type")
		}
		seen[f.EntityType] = true
	}
	if seen[entityIP] && (seen[entityUser] || seen[entityClientID]) {
		return fail("ip cannot be filtered with user or client-id")
	}
	// Entries is nullable, null only on an error: Kafka's clients read
	// an empty list, never a null one, from a success.
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	quotas := c.b.meta.Cluster().Quotas
	entities := slices.SortedFunc(maps.Keys(quotas), func(a, b meta.QuotaEntity) int { return strings.Compare(a.String(), b.String()) })
	for _, e := range entities {
		if !quotaFilterMatches(e, r.Components, r.Strict) {
			continue
		}
		entry := kmsg.NewDescribeClientQuotasResponseEntry()
		entry.Entity = quotaEntityComponents(e)
		vals := quotas[e]
		for _, k := range slices.Sorted(maps.Keys(vals)) {
			v := kmsg.NewDescribeClientQuotasResponseEntryValue()
			v.Key, v.Value = k, vals[k]
			entry.Values = append(entry.Values, v)
		}
		resp.Entries = append(resp.Entries, entry)
	}
	return respond(resp)
}

// quotaComponent is one of an entity's components by type.
func quotaComponent(e meta.QuotaEntity, typ string) meta.QuotaName {
	switch typ {
	case entityUser:
		return e.User
	case entityClientID:
		return e.ClientID
	}
	return e.IP
}

func quotaFilterMatches(e meta.QuotaEntity, filter []kmsg.DescribeClientQuotasRequestComponent, strict bool) bool {
	for _, f := range filter {
		n := quotaComponent(e, f.EntityType)
		if !n.Set {
			return false
		}
		switch f.MatchType {
		case kmsg.QuotasMatchTypeExact:
			if n.Default || n.Name != *f.Match {
				return false
			}
		case kmsg.QuotasMatchTypeDefault:
			if !n.Default {
				return false
			}
		}
	}
	if strict {
		n := 0
		for _, typ := range []string{entityUser, entityClientID, entityIP} {
			if quotaComponent(e, typ).Set {
				n++
			}
		}
		return n == len(filter)
	}
	return true
}

// quotaEntityComponents lists an entity's components as the protocol
// does, the default as a null name.
func quotaEntityComponents(e meta.QuotaEntity) []kmsg.DescribeClientQuotasResponseEntryEntity {
	var out []kmsg.DescribeClientQuotasResponseEntryEntity
	for _, typ := range []string{entityUser, entityClientID, entityIP} {
		n := quotaComponent(e, typ)
		if !n.Set {
			continue
		}
		ec := kmsg.NewDescribeClientQuotasResponseEntryEntity()
		ec.Type = typ
		if !n.Default {
			ec.Name = kmsg.StringPtr(n.Name)
		}
		out = append(out, ec)
	}
	return out
}
