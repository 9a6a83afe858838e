//go:build !linux

package broker

// newRegionWriter copies regions through buffers: sendfile is used on
// Linux only.
func newRegionWriter(c *conn) regionWriter { return &copyRegionWriter{w: deadlineWriter{c}} }
