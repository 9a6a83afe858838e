package broker

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs v0-v4 for topics and brokers. A topic's configs are
// listed with the value in force and its source: the topic's own
// (DYNAMIC_TOPIC_CONFIG), this broker's or the cluster's dynamic default
// (DYNAMIC_BROKER_CONFIG, DYNAMIC_DEFAULT_BROKER_CONFIG), the broker's
// static configuration (STATIC_BROKER_CONFIG) or Kafka's default
// (DEFAULT_CONFIG). With IncludeSynonyms (v1+) each lists every setting it
// could come from, under the broker names for the broker-level ones
// (log.retention.ms for retention.ms), the one in force first. Broker
// "<this id>" lists the static configuration, read-only, and the log
// defaults and replication throttle rates that AlterConfigs can change; broker "" lists the cluster-wide
// dynamic defaults that are set. ConfigNames narrows the list; names not
// known are left out. Documentation (v3+) is null. Another broker's id,
// broker loggers, client metrics and group configs are INVALID_REQUEST.
// With an authorizer a topic's configs need DESCRIBE_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED), a broker's on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).

func init() { register(32, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	b := c.b
	for _, rr := range r.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		fail := func(code int16, msg string) {
			sr.ErrorCode = code
			sr.ErrorMessage = &msg
		}
		var entries []configEntry
		if !c.allowedConfigs(kmsg.ACLOperationDescribeConfigs, rr.ResourceType, rr.ResourceName) {
			err := configsDenied(rr.ResourceType)
			sr.ErrorCode = err.Code
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.meta.Cluster().Topics[rr.ResourceName]
			if t == nil {
				fail(kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %s does not exist", rr.ResourceName))
				break
			}
			entries = b.topicConfigEntries(t.Configs)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != b.nodeName() {
				fail(kerr.InvalidRequest.Code, fmt.Sprintf("this is broker %d, not %s", b.cfg.NodeID, rr.ResourceName))
				break
			}
			entries = b.brokerConfigEntries(rr.ResourceName)
		default:
			fail(kerr.InvalidRequest.Code, fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			sc.Name = e.name
			sc.Value = &e.value
			sc.Source = kmsg.ConfigSource(e.source)
			sc.IsDefault = e.source == configSourceDefault
			sc.ReadOnly = e.readOnly
			sc.ConfigType = configType(rr.ResourceType, e.name)
			if r.IncludeSynonyms {
				for _, s := range e.synonyms {
					syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					syn.Name = s.name
					syn.Value = &s.value
					syn.Source = kmsg.ConfigSource(s.source)
					sc.ConfigSynonyms = append(sc.ConfigSynonyms, syn)
				}
			}
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return respond(resp)
}

// configType is the type DescribeConfigs v3+ reports for a config of the
// given resource type.
func configType(typ kmsg.ConfigResourceType, name string) kmsg.ConfigType {
	if typ == kmsg.ConfigResourceTypeBroker {
		if _, ok := throttleRateDefs[name]; ok {
			return kmsg.ConfigTypeLong
		}
		tn, ok := dynamicBrokerConfigs[name]
		if !ok {
			return kmsg.ConfigTypeString
		}
		name = tn
	}
	def, ok := topicConfigDefs[name]
	if !ok {
		return kmsg.ConfigTypeString
	}
	switch def.kind {
	case kindLong:
		return kmsg.ConfigTypeLong
	case kindInt:
		return kmsg.ConfigTypeInt
	case kindDouble:
		return kmsg.ConfigTypeDouble
	case kindBool:
		return kmsg.ConfigTypeBoolean
	case kindList:
		return kmsg.ConfigTypeList
	}
	return kmsg.ConfigTypeString
}
