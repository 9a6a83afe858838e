package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// AlterConfigs v0-v2 (the legacy API) for topics and brokers: each
// resource's dynamic configs become exactly those in the request; a config
// left out goes back to the broker's or Kafka's default. Validation,
// resources and ValidateOnly are as for IncrementalAlterConfigs
// (44_incremental_alter_configs.go); a null value is INVALID_CONFIG.
// With an authorizer it needs ALTER_CONFIGS, on the topic or, for a
// broker, on the cluster (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED).

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	rs := make([]alterResource, len(r.Resources))
	for i, rr := range r.Resources {
		rs[i] = alterResource{key: configResourceKey{rr.ResourceType, rr.ResourceName}}
		for _, rc := range rr.Configs {
			rs[i].names = append(rs[i].names, rc.Name)
		}
		rs[i].apply = func(t configTarget, _ map[string]string) (map[string]string, error) {
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
		}
	}
	for i, err := range c.b.alterResources(c, rs, r.ValidateOnly) {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rs[i].key.typ, rs[i].key.name
		sr.ErrorCode, sr.ErrorMessage = alterError(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return respond(resp)
}
