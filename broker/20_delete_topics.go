package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteTopics v1-v6 (v6 names topics by name or id). A deleted topic's
// partitions are closed and their data removed before the response.
// With an authorizer a topic needs DELETE (TOPIC_AUTHORIZATION_FAILED,
// checked before its existence when named).

func init() { register(20, 1, 6, handleDeleteTopics) }

func handleDeleteTopics(c *conn, req *request) (finisher, error) {
	r := req.kreq.(*kmsg.DeleteTopicsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteTopicsResponse)
	b := c.b
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.Version >= 6 {
		for _, t := range r.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range r.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	deleted := false
	for _, t := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		cl := b.meta.Cluster()
		name := ""
		if t.name != nil {
			name = *t.name
			if mt := cl.Topics[name]; mt != nil {
				st.TopicID = mt.ID
			}
		} else if mt := cl.TopicsByID[t.id]; mt != nil {
			name = mt.Name
			st.TopicID = t.id
		}
		st.Topic = t.name
		if (t.name != nil || name != "") && !c.allowed(kmsg.ACLOperationDelete, kmsg.ACLResourceTypeTopic, name) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			if t.name == nil {
				st.TopicID = t.id
			}
		} else if name == "" {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if t.name == nil {
				st.ErrorCode = kerr.UnknownTopicID.Code
				st.TopicID = t.id
			}
		} else if b.internalTopic(name) {
			st.ErrorCode = kerr.InvalidRequest.Code
			msg := "topic " + name + " is internal and cannot be deleted"
			st.ErrorMessage = &msg
		} else if err := b.meta.DeleteTopic(c.ctx, name); err != nil {
			st.ErrorCode = errorCode(err)
			st.ErrorMessage = errorMessage(err)
		} else {
			deleted = true
			n := name
			st.Topic = &n
		}
		resp.Topics = append(resp.Topics, st)
	}
	if deleted {
		if err := b.parts.reconcile(); err != nil {
			b.logger.Error("reconcile after delete", "err", err)
		}
	}
	return respond(resp)
}
