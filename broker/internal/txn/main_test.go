package txn

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine the coordinator starts is gone once it is closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
