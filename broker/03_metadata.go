package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// Metadata v0-v12. Topics may be named or (v10+) given by id. A named topic
// that does not exist is created when auto.create.topics.enable is on and
// the request allows it (v4+; always before v4).
//
// With an authorizer (KIP-430 and Kafka's checks): a listing of all
// topics shows only those the principal may DESCRIBE; a named topic it
// may not DESCRIBE gets TOPIC_AUTHORIZATION_FAILED whether it exists or
// not; auto-creating one needs CREATE on the cluster or the topic
// (TOPIC_AUTHORIZATION_FAILED otherwise). Authorized operations are
// computed when asked (v8+); without an authorizer they stay at the "not
// requested" default.

func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	b := c.b
	cl := b.meta.Cluster()

	allowAuto := r.Version < 4 || r.AllowAutoTopicCreation
	all := r.Topics == nil || (r.Version == 0 && len(r.Topics) == 0)

	var topics []*meta.Topic
	if all {
		for _, t := range cl.Topics {
			if c.allowedQuiet(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name) {
				topics = append(topics, t)
			}
		}
	} else {
		for _, rt := range r.Topics {
			var t *meta.Topic
			denied := false
			switch {
			case rt.Topic != nil:
				t = cl.Topics[*rt.Topic]
				denied = !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, *rt.Topic)
				if t == nil && !denied && allowAuto && b.cfg.AutoCreateTopics {
					if !c.allowedQuiet(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeCluster, meta.ClusterResourceName) &&
						!c.allowed(kmsg.ACLOperationCreate, kmsg.ACLResourceTypeTopic, *rt.Topic) {
						denied = true
						break
					}
					t = b.autoCreate(c, *rt.Topic)
					cl = b.meta.Cluster()
				}
			default:
				t = cl.TopicsByID[rt.TopicID]
				denied = t != nil && !c.allowed(kmsg.ACLOperationDescribe, kmsg.ACLResourceTypeTopic, t.Name)
			}
			if denied {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = rt.Topic
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.TopicAuthorizationFailed.Code
				resp.Topics = append(resp.Topics, st)
				continue
			}
			if t == nil {
				st := kmsg.NewMetadataResponseTopic()
				st.Topic = rt.Topic
				st.TopicID = rt.TopicID
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if rt.Topic != nil && meta.ValidateTopicName(*rt.Topic) != nil {
					st.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, st)
				continue
			}
			topics = append(topics, t)
		}
	}
	for _, t := range topics {
		st := metadataTopic(cl, t)
		if r.IncludeTopicAuthorizedOperations && b.authz != nil {
			st.AuthorizedOperations = c.authorizedOperations(kmsg.ACLResourceTypeTopic, t.Name)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if r.IncludeClusterAuthorizedOperations && b.authz != nil {
		resp.AuthorizedOperations = c.authorizedOperations(kmsg.ACLResourceTypeCluster, meta.ClusterResourceName)
	}
	for _, br := range cl.Brokers {
		if br.Fenced {
			continue // clients are told only of live brokers
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID = br.ID
		mb.Host, mb.Port = c.endpoint(br)
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	clusterID := cl.ClusterID
	resp.ClusterID = &clusterID
	resp.ControllerID = cl.ControllerID
	return respond(resp)
}

func metadataTopic(cl *meta.Cluster, t *meta.Topic) kmsg.MetadataResponseTopic {
	st := kmsg.NewMetadataResponseTopic()
	name := t.Name
	st.Topic = &name
	st.TopicID = t.ID
	st.IsInternal = t.Internal
	for _, p := range t.Partitions {
		sp := kmsg.NewMetadataResponseTopicPartition()
		sp.Partition = p.Index
		sp.Leader = p.Leader
		sp.LeaderEpoch = p.LeaderEpoch
		sp.Replicas = p.Replicas
		sp.ISR = p.ISR
		for _, r := range p.Replicas {
			if br, ok := cl.Brokers[r]; !ok || br.Fenced {
				sp.OfflineReplicas = append(sp.OfflineReplicas, r)
			}
		}
		if br, ok := cl.Brokers[p.Leader]; !ok || p.Leader < 0 || br.Fenced {
			sp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
		st.Partitions = append(st.Partitions, sp)
	}
	return st
}

// autoCreate creates a topic on first reference, with the broker's default
// partition count. It returns nil when the name is invalid or creation
// failed (another request may have created it meanwhile; then the caller's
// fresh look-up finds it).
func (b *Broker) autoCreate(c *conn, name string) *meta.Topic {
	if meta.ValidateTopicName(name) != nil {
		return nil
	}
	if err := b.checkPartitionCount(name, b.cfg.NumPartitions, b.cfg.DefaultReplicationFactor); err != nil {
		return nil
	}
	t, err := b.meta.CreateTopic(c.ctx, meta.TopicSpec{Name: name, NumPartitions: b.cfg.NumPartitions, ReplicationFactor: b.cfg.DefaultReplicationFactor})
	if err != nil {
		return b.meta.Cluster().Topics[name]
	}
	if err := b.parts.reconcile(); err != nil {
		b.logger.Error("reconcile after auto-create", "topic", name, "err", err)
	}
	return t
}
