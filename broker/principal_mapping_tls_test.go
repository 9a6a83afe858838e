package broker_test

import (
	"crypto/x509/pkix"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/broker"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// ssl.principal.mapping.rules turn a client certificate's subject into
// the connection's principal over mTLS; a subject no rule applies to is
// refused.
func TestSSLPrincipalMapping(t *testing.T) {
	ca := testutil.NewCA(t, "test-ca")
	b := secureBroker(t, ca, func(c *broker.Config) {
		c.Security.TLS.ClientAuth = "required"
		c.Security.TLS.PrincipalMappingRules = `RULE:^CN=(.*?),OU=Apps,O=Example$/$1/L`
	})
	appCert, appKey := ca.Issue(t, "app", pkix.Name{CommonName: "Orders", OrganizationalUnit: []string{"Apps"}, Organization: []string{"Example"}})
	cl := newClient(t, b.ListenerAddr("SSL"), kgo.DialTLSConfig(ca.ClientTLS(t, appCert, appKey)))
	if err := cl.Ping(testContext(t)); err != nil {
		t.Fatal(err)
	}
	if got := b.Principals(); !slices.Contains(got, "User:orders") {
		t.Fatalf("principals %v, want User:orders among them", got)
	}
	cl.Close()
	waitConns(t, b, 0)

	otherCert, otherKey := ca.Issue(t, "other", pkix.Name{CommonName: "Stranger", Organization: []string{"Elsewhere"}})
	if err := pingErr(t, b.ListenerAddr("SSL"), kgo.DialTLSConfig(ca.ClientTLS(t, otherCert, otherKey))); err == nil {
		t.Fatal("a certificate no mapping rule applies to was accepted")
	}
	waitConns(t, b, 0)
}
