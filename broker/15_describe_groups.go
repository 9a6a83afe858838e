package broker

import "github.com/twmb/franz-go/pkg/kmsg"

// DescribeGroups v0-v6: state, protocol type, and members with client id,
// host and (v4+) instance id; a Stable group also gives the chosen
// protocol and each member's metadata and assignment. An unknown group is
// Dead (v6+: GROUP_ID_NOT_FOUND). Authorized operations stay at "not
// computed": there is no authorizer yet.

func init() { register(15, 0, 6, handleDescribeGroups) }

func handleDescribeGroups(c *conn, req *request) (finisher, error) {
	return respond(c.b.groups.DescribeGroups(req.kreq.(*kmsg.DescribeGroupsRequest)))
}
