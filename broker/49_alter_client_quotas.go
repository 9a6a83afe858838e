package broker

import (
	"fmt"
	"math"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// AlterClientQuotas v0-v1: sets and removes client quotas in the metadata,
// for an entity of a user, a client id, both, or an ip, each a name or the
// default (a null name). The keys are Kafka's: producer_byte_rate,
// consumer_byte_rate, request_percentage and controller_mutation_rate for
// users and client ids, connection_creation_rate for ips. Each entry gets
// its own result, INVALID_REQUEST for an unknown or repeated entity type,
// ip with another type, an ip name that is not an address, an unknown
// key, a value that is not a positive number (a whole one for the byte
// rates). The entries that pass are written in one step; ValidateOnly
// checks and writes nothing.
//
// connection_creation_rate is enforced when connections are accepted
// (connrate.go). Not here: enforcing controller_mutation_rate, which is
// stored and described only.

func init() { register(49, 0, 1, handleAlterClientQuotas) }

func handleAlterClientQuotas(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AlterClientQuotasRequest)
	resp := r.ResponseKind().(*kmsg.AlterClientQuotasResponse)
	errs := make([]error, len(r.Entries))
	var alts []meta.QuotaAlteration
	var altIndex []int
	allowed := c.allowedCluster(kmsg.ACLOperationAlterConfigs)
	for i, e := range r.Entries {
		if !allowed {
			errs[i] = kerr.ClusterAuthorizationFailed
			continue
		}
		alt, err := quotaAlteration(e)
		if err != nil {
			errs[i] = err
			continue
		}
		alts = append(alts, alt)
		altIndex = append(altIndex, i)
	}
	if !r.ValidateOnly && len(alts) > 0 {
		if err := c.b.meta.AlterQuotas(c.ctx, alts); err != nil {
			for _, i := range altIndex {
				errs[i] = err
			}
		}
	}
	for i, e := range r.Entries {
		re := kmsg.NewAlterClientQuotasResponseEntry()
		for _, ec := range e.Entity {
			rec := kmsg.NewAlterClientQuotasResponseEntryEntity()
			rec.Type, rec.Name = ec.Type, ec.Name
			re.Entity = append(re.Entity, rec)
		}
		if err := errs[i]; err != nil {
			if _, ok := err.(*requestError); ok {
				re.ErrorCode = kerr.InvalidRequest.Code
			} else {
				re.ErrorCode = errorCode(err)
			}
			re.ErrorMessage = errorMessage(err)
		}
		resp.Entries = append(resp.Entries, re)
	}
	return respond(resp)
}

// quotaAlteration checks one entry of the request.
func quotaAlteration(e kmsg.AlterClientQuotasRequestEntry) (meta.QuotaAlteration, error) {
	var alt meta.QuotaAlteration
	bad := func(format string, args ...any) (meta.QuotaAlteration, error) {
		return meta.QuotaAlteration{}, &requestError{fmt.Sprintf(format, args...)}
	}
	for _, ec := range e.Entity {
		n := meta.DefaultName()
		if ec.Name != nil {
			n = meta.Named(*ec.Name)
		}
		var slot *meta.QuotaName
		switch ec.Type {
		case entityUser:
			slot = &alt.Entity.User
		case entityClientID:
			slot = &alt.Entity.ClientID
		case entityIP:
			slot = &alt.Entity.IP
			if !n.Default && net.ParseIP(n.Name) == nil {
				return bad("ip quota entity %q is not an IP address", n.Name)
			}
		default:
			return bad("unknown quota entity type %q", ec.Type)
		}
		if slot.Set {
			return bad("quota entity type %s given twice", ec.Type)
		}
		*slot = n
	}
	if err := alt.Entity.Validate(); err != nil {
		return bad("%v", err)
	}
	seen := map[string]bool{}
	for _, op := range e.Ops {
		integral, ok := quotaKeyTypes[op.Key]
		if alt.Entity.IP.Set {
			integral, ok = false, op.Key == quotaConnectionCreationRate
		}
		switch {
		case !ok:
			return bad("invalid quota key %q for entity %s", op.Key, alt.Entity)
		case seen[op.Key]:
			return bad("quota key %s given twice", op.Key)
		}
		seen[op.Key] = true
		if op.Remove {
			alt.Remove = append(alt.Remove, op.Key)
			continue
		}
		switch {
		case math.IsNaN(op.Value) || math.IsInf(op.Value, 0) || op.Value <= 0:
			return bad("quota %s=%v must be a positive number", op.Key, op.Value)
		case integral && op.Value != math.Trunc(op.Value):
			return bad("quota %s=%v must be a whole number", op.Key, op.Value)
		}
		if alt.Set == nil {
			alt.Set = map[string]float64{}
		}
		alt.Set[op.Key] = op.Value
	}
	return alt, nil
}
