package broker

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs v0-v1 for topics and brokers. Each resource's
// operations apply in order to its dynamic configs: SET, DELETE, and for
// list configs (cleanup.policy, the throttled replica lists) APPEND and
// SUBTRACT, which start from the value in force when the resource does not
// set the config itself. The result is validated as a whole (INVALID_CONFIG
// with the reason: a bad value, an unknown name, min.compaction.lag.ms
// above max.compaction.lag.ms ...) and written to the Raft metadata in one
// step; open partitions take it up before the response. Broker resources
// are "" (the cluster-wide defaults) and this broker's id; only the broker
// configs that are topic defaults (log.retention.ms, log.segment.bytes ...)
// and the replication throttle rates (replication_throttle.go) can
// change. A resource named twice, or a config named twice in one
// resource, is INVALID_REQUEST. A DELETE of a name the resource does not
// set changes nothing, whatever the name. ValidateOnly checks and changes
// nothing. With an authorizer it needs ALTER_CONFIGS, on the topic or, for
// a broker, on the cluster (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED).

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	rs := make([]alterResource, len(r.Resources))
	for i, rr := range r.Resources {
		rs[i] = alterResource{key: configResourceKey{rr.ResourceType, rr.ResourceName}}
		for _, rc := range rr.Configs {
			rs[i].names = append(rs[i].names, rc.Name)
		}
		rs[i].apply = func(t configTarget, cur map[string]string) (map[string]string, error) {
			return applyIncremental(t, cur, rr.Configs)
		}
	}
	for i, err := range c.b.alterResources(c, rs, r.ValidateOnly) {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rs[i].key.typ, rs[i].key.name
		sr.ErrorCode, sr.ErrorMessage = alterError(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return respond(resp)
}

// alterResource is one resource of an AlterConfigs or
// IncrementalAlterConfigs request: the config names it touches and how it
// turns the resource's dynamic configs into the new ones.
type alterResource struct {
	key   configResourceKey
	names []string
	apply func(t configTarget, cur map[string]string) (map[string]string, error)
}

// alterResources checks and applies the resources of an alter request in
// order, returning each one's error: a resource named twice, or a config
// named twice in one resource, is INVALID_REQUEST. Partitions take up the
// changes before it returns.
func (b *Broker) alterResources(c *conn, rs []alterResource, validateOnly bool) []error {
	seen := make(map[configResourceKey]int)
	for _, r := range rs {
		seen[r.key]++
	}
	errs := make([]error, len(rs))
	changed := false
	for i, r := range rs {
		switch {
		case seen[r.key] > 1:
			errs[i] = &requestError{fmt.Sprintf("resource %s appears more than once in the request", r.key.name)}
		case hasDuplicate(r.names):
			errs[i] = &requestError{"error due to duplicate config keys"}
		case !c.allowedConfigs(kmsg.ACLOperationAlterConfigs, r.key.typ, r.key.name):
			errs[i] = configsDenied(r.key.typ)
		default:
			errs[i] = b.alterConfigs(c.ctx, r.key.typ, r.key.name, validateOnly, r.apply)
			changed = changed || (errs[i] == nil && !validateOnly)
		}
	}
	if changed {
		if err := b.parts.reconcile(); err != nil {
			b.logger.Error("reconcile after config change", "err", err)
		}
	}
	return errs
}

type configResourceKey struct {
	typ  kmsg.ConfigResourceType
	name string
}

func hasDuplicate(names []string) bool {
	s := slices.Clone(names)
	slices.Sort(s)
	return len(slices.Compact(s)) != len(names)
}

// applyIncremental applies IncrementalAlterConfigs operations to cur.
func applyIncremental(t configTarget, cur map[string]string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, error) {
	for _, op := range ops {
		def, known := t.def(op.Name)
		// A DELETE of any name is allowed, as in Kafka, where it
		// only takes the name out of the overrides: it removes a
		// config set before it became unknown, and it is a no-op for
		// one never set. kafka-reassign-partitions --verify deletes
		// the replication throttle rates from every broker that way.
		if !known && op.Op != kmsg.IncrementalAlterConfigOpDelete {
			return nil, t.unknown(op.Name)
		}
		switch op.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if op.Value == nil {
				return nil, &configError{"null value not supported for SET of " + op.Name}
			}
			cur[op.Name] = *op.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cur, op.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			verb := "append"
			if op.Op == kmsg.IncrementalAlterConfigOpSubtract {
				verb = "subtract"
			}
			if def.kind != kindList {
				return nil, &configError{fmt.Sprintf("config value %s is not allowed for config key: %s (not a list)", verb, op.Name)}
			}
			if op.Value == nil {
				return nil, &configError{fmt.Sprintf("null value not supported for %s of %s", strings.ToUpper(verb), op.Name)}
			}
			base, ok := cur[op.Name]
			if !ok {
				base = t.below(op.Name)
			}
			items := splitList(base)
			for _, v := range splitList(*op.Value) {
				if op.Op == kmsg.IncrementalAlterConfigOpAppend {
					if !slices.Contains(items, v) {
						items = append(items, v)
					}
				} else {
					items = slices.DeleteFunc(items, func(s string) bool { return s == v })
				}
			}
			cur[op.Name] = strings.Join(items, ",")
		default:
			return nil, &requestError{fmt.Sprintf("unknown config operation %d for %s", op.Op, op.Name)}
		}
	}
	return cur, nil
}
