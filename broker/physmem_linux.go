package broker

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
)

// physicalMemory is the memory this process may use in bytes: the
// machine's, or less where its control group (a container's memory
// limit) allows less; 0 if unknown.
func physicalMemory() int64 {
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err != nil {
		return 0
	}
	m := int64(si.Totalram) * int64(si.Unit)
	if limit := cgroupMemoryLimit(os.DirFS("/")); limit > 0 && (m <= 0 || limit < m) {
		m = limit
	}
	return m
}

// cgroupMemoryLimit is the lowest memory limit of the process's control
// group and its ancestors, read from root (the file system's root: /proc
// and /sys/fs/cgroup under it), for cgroup v2 (memory.max) or v1
// (memory.limit_in_bytes); 0 for none or unknown.
func cgroupMemoryLimit(root fs.FS) int64 {
	self, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return 0
	}
	var limit int64
	lower := func(file string, unlimited func(string) bool) {
		b, err := fs.ReadFile(root, file)
		if err != nil {
			return
		}
		v := strings.TrimSpace(string(b))
		if unlimited(v) {
			return
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 && (limit == 0 || n < limit) {
			limit = n
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(self))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) != 3 {
			continue
		}
		switch {
		case fields[0] == "0" && fields[1] == "": // v2, unified
			// The process sees its own group's path, or "/" inside a
			// cgroup namespace (where the root's files are the group's).
			for dir := path.Clean(fields[2]); ; dir = path.Dir(dir) {
				lower(path.Join("sys/fs/cgroup", dir, "memory.max"), func(v string) bool { return v == "max" })
				if dir == "/" || dir == "." {
					break
				}
			}
		case hasController(fields[1], "memory"): // v1
			// Limits at or near the largest int64 mean none.
			none := func(v string) bool { n, err := strconv.ParseInt(v, 10, 64); return err == nil && n >= 1<<60 }
			lower(path.Join("sys/fs/cgroup/memory", path.Clean(fields[2]), "memory.limit_in_bytes"), none)
			lower("sys/fs/cgroup/memory/memory.limit_in_bytes", none)
		}
	}
	return limit
}

// hasController reports whether the comma-separated controllers name c.
func hasController(controllers, c string) bool {
	for s := range strings.SplitSeq(controllers, ",") {
		if s == c {
			return true
		}
	}
	return false
}
