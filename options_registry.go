package runnel

import (
	"fmt"
	"net/url"
)

// Schema registry options. The embedded broker serves the Confluent Schema
// Registry API by default (App.RegistryURL tells where); an application
// whose schemas live in another registry points at it instead, and one
// that needs none can leave the embedded registry off.

// SchemaRegistryURL is the base URL of the schema registry the
// application's Avro serdes use (Confluent's schema.registry.url):
// App.RegistryURL returns it, and the embedded broker, when there is one,
// serves no registry of its own. Default: the embedded broker's registry,
// or none on given Brokers.
func SchemaRegistryURL(u string) AppOption {
	return appOpt(func(o *AppOptions) { o.RegistryURL = u })
}

// EmbeddedRegistry says whether the embedded broker serves a schema
// registry. Default true; it has no effect on given Brokers.
func EmbeddedRegistry(on bool) AppOption {
	return appOpt(func(o *AppOptions) { o.NoEmbeddedRegistry = !on })
}

func (o *AppOptions) registryProblems() []string {
	if o.RegistryURL == "" {
		return nil
	}
	u, err := url.Parse(o.RegistryURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return []string{fmt.Sprintf("schema registry URL %q is not an http(s) URL", o.RegistryURL)}
	}
	return nil
}
