//go:build !unix

package broker

import "os"

// flock does not lock on systems without flock(2): there two brokers on
// one data dir are not caught here, and the second waits on the metadata
// store's own lock.
func flock(*os.File) error { return nil }
