package broker

import (
	"testing"
	"testing/fstest"
)

// The direct writes' cache takes an eighth of the memory, so the memory
// must be what the process may use: a container's limit, not the
// machine's.
func TestCgroupMemoryLimit(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, c := range []struct {
		name string
		fs   fstest.MapFS
		want int64
	}{
		{"no cgroup file", fstest.MapFS{}, 0},
		{"v2 unlimited", fstest.MapFS{
			"proc/self/cgroup":                    file("0::/user.slice/session-1.scope\n"),
			"sys/fs/cgroup/memory.max":            file("max\n"),
			"sys/fs/cgroup/user.slice/memory.max": file("max\n"),
		}, 0},
		{"v2 own group", fstest.MapFS{
			"proc/self/cgroup": file("0::/system.slice/runnel.service\n"),
			"sys/fs/cgroup/system.slice/runnel.service/memory.max": file("2147483648\n"),
			"sys/fs/cgroup/system.slice/memory.max":                file("max\n"),
		}, 2 << 30},
		{"v2 a parent's lower limit", fstest.MapFS{
			"proc/self/cgroup":                           file("0::/kubepods/pod1/ctr\n"),
			"sys/fs/cgroup/kubepods/pod1/ctr/memory.max": file("4294967296\n"),
			"sys/fs/cgroup/kubepods/pod1/memory.max":     file("1073741824\n"),
		}, 1 << 30},
		{"v2 inside a cgroup namespace", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("536870912\n"),
		}, 512 << 20},
		{"v2 garbage", fstest.MapFS{
			"proc/self/cgroup":         file("0::/\n"),
			"sys/fs/cgroup/memory.max": file("lots\n"),
		}, 0},
		{"v1 limit", fstest.MapFS{
			"proc/self/cgroup": file("12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n1:name=systemd:/docker/abc\n"),
			"sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes": file("3221225472\n"),
		}, 3 << 30},
		{"v1 unlimited, namespaced", fstest.MapFS{
			"proc/self/cgroup":                           file("4:memory:/\n"),
			"sys/fs/cgroup/memory/memory.limit_in_bytes": file("9223372036854771712\n"),
		}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := cgroupMemoryLimit(c.fs); got != c.want {
				t.Fatalf("limit %d, want %d", got, c.want)
			}
		})
	}
}
