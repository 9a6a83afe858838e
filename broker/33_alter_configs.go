package broker

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs v0-v2 (the legacy API) for topics and brokers: each
// resource's dynamic configs become exactly those in the request; a config
// left out goes back to the broker's or Kafka's default. Validation,
// resources and ValidateOnly are as for IncrementalAlterConfigs
// (44_incremental_alter_configs.go); a null value is INVALID_CONFIG.

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	b := c.b
	seen := make(map[configResourceKey]int)
	for _, rr := range r.Resources {
		seen[configResourceKey{rr.ResourceType, rr.ResourceName}]++
	}
	changed := false
	for _, rr := range r.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		var err error
		names := make([]string, len(rr.Configs))
		for i, rc := range rr.Configs {
			names[i] = rc.Name
		}
		switch {
		case seen[configResourceKey{rr.ResourceType, rr.ResourceName}] > 1:
			err = &requestError{fmt.Sprintf("resource %s appears more than once in the request", rr.ResourceName)}
		case hasDuplicate(names):
			err = &requestError{"error due to duplicate config keys"}
		default:
			err = b.alterConfigs(c.ctx, rr.ResourceType, rr.ResourceName, r.ValidateOnly, func(t configTarget, _ map[string]string) (map[string]string, error) {
				next := make(map[string]string, len(rr.Configs))
				for _, rc := range rr.Configs {
					if _, ok := t.def(rc.Name); !ok {
						return nil, t.unknown(rc.Name)
					}
					if rc.Value == nil {
						return nil, &configError{"null value not supported for " + rc.Name}
					}
					next[rc.Name] = *rc.Value
				}
				return next, nil
			})
			changed = changed || (err == nil && !r.ValidateOnly)
		}
		sr.ErrorCode, sr.ErrorMessage = alterError(err)
		resp.Resources = append(resp.Resources, sr)
	}
	if changed {
		if err := b.parts.reconcile(); err != nil {
			b.logger.Error("reconcile after config change", "err", err)
		}
	}
	return respond(resp)
}
