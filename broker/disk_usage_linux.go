package broker

import "syscall"

// diskUsage returns the total and usable (available to this user) bytes
// of the file system holding dir, or -1, -1 if it cannot tell.
func diskUsage(dir string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1, -1
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize
}
