package broker

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// handler serves one API key at versions min..max. fn runs in the
// connection's reader goroutine, in request order; what must wait (an fsync,
// a long poll) goes in the finisher it returns.
type handler struct {
	min, max int16
	fn       func(c *conn, req *request) (finisher, error)
}

// handlers is filled by the init functions of the per-API files
// (00_produce.go, 01_fetch.go, ...), and read only after.
var handlers = map[int16]handler{}

func register(key, min, max int16, fn func(c *conn, req *request) (finisher, error)) {
	if _, dup := handlers[key]; dup {
		panic(fmt.Sprintf("broker: api key %d registered twice", key))
	}
	if max > kmsg.RequestForKey(key).MaxVersion() {
		panic(fmt.Sprintf("broker: %s v%d is beyond kmsg", kmsg.NameForKey(key), max))
	}
	handlers[key] = handler{min: min, max: max, fn: fn}
}

// respond returns a finisher that answers at once with resp.
func respond(resp kmsg.Response) (finisher, error) {
	return func(context.Context) kmsg.Response { return resp }, nil
}

// supportedKeys lists the registered API keys in order.
func supportedKeys() []int16 {
	keys := make([]int16, 0, len(handlers))
	for k := range handlers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
