package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// ListGroups v0-v5: the groups this broker coordinates, with their state
// (v4+, filterable) and type (v5+, filterable; every group is "classic").

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(c *conn, req *request) (finisher, error) {
	return respond(c.b.groups.ListGroups(req.kreq.(*kmsg.ListGroupsRequest)))
}
