package topology

import (
	"fmt"

	"github.com/runnel-dev/runnel/state"
)

// StoreKind says which interface of package state a store has.
type StoreKind int

const (
	// KeyValueStore stores are state.KeyValueStore.
	KeyValueStore StoreKind = iota
	// WindowStore stores are state.WindowStore.
	WindowStore
	// SessionStore stores are state.SessionStore.
	SessionStore
)

func (k StoreKind) String() string {
	switch k {
	case WindowStore:
		return "window"
	case SessionStore:
		return "session"
	}
	return "key-value"
}

// StoreSpec describes a state store of the topology. Each task opens its own
// instance through the state.Supplier its driver gives it; Context.Store
// returns a state.KeyValueStore, state.WindowStore or state.SessionStore by
// Kind.
type StoreSpec struct {
	Name    string
	Kind    StoreKind
	Window  state.WindowOptions  // for WindowStore
	Session state.SessionOptions // for SessionStore
	// Logging sends every write to the changelog topic
	// "<application id>-<name>-changelog" (Kafka Streams' logging enabled,
	// the default in the DSL).
	Logging bool
	// Caching puts a record cache in front of the store where the driver
	// enables caching (Kafka Streams' caching enabled, the DSL default).
	Caching bool
}

func (s StoreSpec) validate() error {
	if s.Name == "" {
		return fmt.Errorf("%w: a store has an empty name", ErrInvalidTopology)
	}
	switch s.Kind {
	case WindowStore:
		if err := s.Window.EnsureDefaults().Validate(); err != nil {
			return fmt.Errorf("%w: store %q: %w", ErrInvalidTopology, s.Name, err)
		}
	case SessionStore:
		if err := s.Session.EnsureDefaults().Validate(); err != nil {
			return fmt.Errorf("%w: store %q: %w", ErrInvalidTopology, s.Name, err)
		}
	}
	return nil
}

// ChangelogTopic is the name of the changelog topic of store in application app.
func ChangelogTopic(app, store string) string { return app + "-" + store + "-changelog" }

// RepartitionTopic is the full name of the repartition topic with the given
// base name in application app.
func RepartitionTopic(app, base string) string { return app + "-" + base }
