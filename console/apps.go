package console

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-dev/runnel/internal/appstatus"
)

// Stream applications: the groups whose members run a Runnel App (their
// group protocol is appProtocol) and the applications that publish status
// records (package appstatus), joined by application id, which is the
// group's name.

// appProtocol is the group protocol (balancer) of a Runnel App's members.
const appProtocol = "runnel-tasks"

// staleAfter is how many status intervals without a record make an
// instance's status stale (it crashed, or cannot reach the cluster).
const staleAfter = 3

// AppSummary is one line of the application list (GET /api/apps).
type AppSummary struct {
	App string `json:"app"`
	// GroupState is the state of the application's group ("" when the
	// group is gone), Members its members (one per worker).
	GroupState string `json:"groupState"`
	Members    int    `json:"members"`
	// Instances counts the instances with a status record, Tasks their
	// active tasks.
	Instances int `json:"instances"`
	Tasks     int `json:"tasks"`
	// RecordsPerSec is the sum of the tasks' rates; Lag the group's total
	// lag (-1 when unknown).
	RecordsPerSec float64 `json:"recordsPerSec"`
	Lag           int64   `json:"lag"`
}

// App is a stream application's page (GET /api/apps/{app}).
type App struct {
	AppSummary
	// Topology is the description its instances publish; Graph is it
	// laid out, nil when no instance published one (or it could not be
	// read: TopologyError says why).
	Topology      string        `json:"topology"`
	Graph         *TopoGraph    `json:"graph,omitempty"`
	TopologyError string        `json:"topologyError,omitempty"`
	InstanceList  []AppInstance `json:"instanceList"`
}

// AppInstance is one instance of an application.
type AppInstance struct {
	Process  string `json:"process"`
	Endpoint string `json:"endpoint,omitempty"`
	// State is the App's state in its last status record ("" without
	// one); Stale is set when that record is older than a few intervals.
	State string `json:"state"`
	Stale bool   `json:"stale,omitempty"`
	// AgeSeconds is the age of the last status record.
	AgeSeconds float64 `json:"ageSeconds"`
	// Members are the group members (workers) of the instance: their
	// client ids and hosts.
	Members []string  `json:"members"`
	Workers int       `json:"workers"`
	Tasks   []AppTask `json:"tasks"`
}

// AppTask is a task as its instance reported it, with its restore progress
// as a percentage.
type AppTask struct {
	appstatus.Task
	RestorePercent float64 `json:"restorePercent"`
}

// appGroups returns the described groups running a Runnel App, by name.
func (c *Console) appGroups(ctx context.Context, only ...string) (kadm.DescribedGroups, error) {
	names := only
	if len(names) == 0 {
		listed, err := c.adm.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("console: list groups: %w", err)
		}
		names = listed.Groups()
	}
	out := kadm.DescribedGroups{}
	if len(names) == 0 {
		return out, nil
	}
	described, err := c.adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("console: describe groups: %w", err)
	}
	for name, g := range described {
		if g.Err == nil && g.Protocol == appProtocol {
			out[name] = g
		}
	}
	return out, nil
}

func (c *Console) apps(ctx context.Context, _ *http.Request) (any, error) {
	c.smp.waitReady(ctx)
	groups, err := c.appGroups(ctx)
	if err != nil {
		return nil, err
	}
	byApp := map[string][]appstatus.Status{}
	for _, st := range c.smp.statuses() {
		byApp[st.App] = append(byApp[st.App], st)
	}
	names := map[string]bool{}
	for name := range groups {
		names[name] = true
	}
	for name := range byApp {
		names[name] = true
	}
	var lags kadm.DescribedGroupLags
	if len(groups) > 0 {
		lags, _ = c.adm.Lag(ctx, slices.Collect(maps.Keys(groups))...)
	}
	out := []AppSummary{}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		g, inGroup := groups[name]
		out = append(out, appSummary(name, g, inGroup, byApp[name], lags))
	}
	return out, nil
}

func appSummary(name string, g kadm.DescribedGroup, inGroup bool, sts []appstatus.Status, lags kadm.DescribedGroupLags) AppSummary {
	s := AppSummary{App: name, Instances: len(sts), Lag: -1}
	if inGroup {
		s.GroupState, s.Members = g.State, len(g.Members)
	}
	for _, st := range sts {
		for _, t := range st.Tasks {
			if !t.Standby {
				s.Tasks++
				s.RecordsPerSec += t.RecordsPerSec
			}
		}
	}
	if l, ok := lags[name]; ok && l.Error() == nil {
		s.Lag = totalLag(l.Lag)
	}
	return s
}

func (c *Console) app(ctx context.Context, r *http.Request) (any, error) {
	name := r.PathValue("app")
	c.smp.waitReady(ctx)
	groups, err := c.appGroups(ctx, name)
	if err != nil {
		return nil, err
	}
	var sts []appstatus.Status
	for _, st := range c.smp.statuses() {
		if st.App == name {
			sts = append(sts, st)
		}
	}
	g, inGroup := groups[name]
	if !inGroup && len(sts) == 0 {
		return nil, notFound("console: no stream application %q (no group of Runnel members, no status record)", name)
	}
	var lags kadm.DescribedGroupLags
	if inGroup {
		lags, _ = c.adm.Lag(ctx, name)
	}
	out := App{AppSummary: appSummary(name, g, inGroup, sts, lags), InstanceList: []AppInstance{}}

	// The newest record's topology: instances of one version agree, and
	// during a rolling upgrade the newest is the one being rolled out.
	slices.SortFunc(sts, func(a, b appstatus.Status) int { return cmp.Compare(b.TimeMs, a.TimeMs) })
	if len(sts) > 0 {
		st := sts[0]
		out.Topology = st.Topology
		out.Graph, err = layoutTopology(st.Topology,
			func(t string) string {
				if full, ok := st.Topics[t]; ok {
					return full
				}
				return t
			},
			func(store string) string { return st.Changelogs[store] })
		if err != nil {
			out.TopologyError = err.Error()
		}
	}

	now := time.Now()
	byProcess := map[string]*AppInstance{}
	for _, st := range sts {
		age := now.Sub(time.UnixMilli(st.TimeMs))
		in := &AppInstance{Process: st.Process, Endpoint: st.Endpoint, State: st.State, Workers: st.Workers,
			AgeSeconds: max(0, age.Seconds()), Members: []string{}, Tasks: []AppTask{},
			Stale: st.IntervalMs > 0 && age > staleAfter*time.Duration(st.IntervalMs)*time.Millisecond}
		for _, t := range st.Tasks {
			at := AppTask{Task: t, RestorePercent: 100}
			if total := t.Restored + t.RestoreRemaining; t.RestoreRemaining > 0 && total > 0 {
				at.RestorePercent = float64(t.Restored) / float64(total) * 100
			}
			in.Tasks = append(in.Tasks, at)
		}
		byProcess[st.Process] = in
	}
	for _, m := range g.Members {
		process := memberProcess(m)
		in := byProcess[process]
		if in == nil {
			in = &AppInstance{Process: process, Members: []string{}, Tasks: []AppTask{}}
			byProcess[process] = in
		}
		in.Members = append(in.Members, m.ClientID+" ("+m.ClientHost+")")
	}
	for _, p := range slices.Sorted(maps.Keys(byProcess)) {
		in := byProcess[p]
		slices.Sort(in.Members)
		out.InstanceList = append(out.InstanceList, *in)
	}
	return out, nil
}

// memberProcess reads the process a Runnel member names in the UserData of
// its subscription (a JSON object; see the root package's
// runtime_membermeta.go); "?" when it names none.
func memberProcess(m kadm.DescribedGroupMember) string {
	meta, ok := m.Join.AsConsumer()
	if !ok {
		return "?"
	}
	var info struct {
		Process string `json:"process"`
	}
	if json.Unmarshal(meta.UserData, &info) != nil || info.Process == "" {
		return "?"
	}
	return info.Process
}
