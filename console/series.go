package console

import (
	"context"
	"net/http"
)

// The series the sampler keeps, for the live charts: GET
// /api/series/overview (recordsPerSec, bytesInPerSec, bytesOutPerSec),
// /api/series/topics/{topic} (the same for one topic) and
// /api/series/groups/{group} (lag). A series the cluster cannot give is
// absent (bytesOutPerSec without the broker's counters); an unknown topic
// or group has no series yet.

func (c *Console) overviewSeries(ctx context.Context, _ *http.Request) (any, error) {
	return c.smp.seriesOf("overview"), nil
}

func (c *Console) topicSeries(ctx context.Context, r *http.Request) (any, error) {
	return c.smp.seriesOf("topic/" + r.PathValue("topic")), nil
}

func (c *Console) groupSeries(ctx context.Context, r *http.Request) (any, error) {
	return c.smp.seriesOf("group/" + r.PathValue("group")), nil
}
