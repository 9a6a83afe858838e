package broker

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs v0-v4 for topics and this broker. Topic configs are
// listed with the value in force and its source (dynamic topic, static
// broker, or Kafka's default); ConfigNames narrows the list. Synonyms are
// the entry itself at its source; documentation is not provided. Broker
// loggers, client metrics and group configs are INVALID_REQUEST.

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
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.meta.Cluster().Topics[rr.ResourceName]
			if t == nil {
				fail(kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("topic %s does not exist", rr.ResourceName))
				break
			}
			entries = b.topicConfigEntries(t.Configs)
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				fail(kerr.InvalidRequest.Code, fmt.Sprintf("this is broker %d, not %s", b.cfg.NodeID, rr.ResourceName))
				break
			}
			entries = b.brokerConfigEntries()
		default:
			fail(kerr.InvalidRequest.Code, fmt.Sprintf("resource type %d is not supported", rr.ResourceType))
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			sc := kmsg.NewDescribeConfigsResponseResourceConfig()
			sc.Name = e.name
			v := e.value
			sc.Value = &v
			sc.Source = kmsg.ConfigSource(e.source)
			sc.IsDefault = e.source == configSourceDefault
			sc.ReadOnly = rr.ResourceType == kmsg.ConfigResourceTypeBroker
			sc.ConfigType = configType(e.name)
			if r.IncludeSynonyms {
				syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				syn.Name = e.name
				syn.Value = &v
				syn.Source = sc.Source
				sc.ConfigSynonyms = append(sc.ConfigSynonyms, syn)
			}
			sr.Configs = append(sr.Configs, sc)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return respond(resp)
}

// brokerConfigEntries lists the broker's static configuration in Kafka's
// names.
func (b *Broker) brokerConfigEntries() []configEntry {
	var out []configEntry
	for _, line := range strings.Split(strings.TrimSpace(b.cfg.String()), "\n") {
		name, value, _ := strings.Cut(line, "=")
		out = append(out, configEntry{name, value, configSourceStaticBroker})
	}
	return out
}

func configType(name string) kmsg.ConfigType {
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
