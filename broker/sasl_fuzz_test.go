package broker

import (
	"testing"
	"time"

	"github.com/runnel-dev/runnel/broker/internal/meta"
)

// FuzzSASLServers feeds the PLAIN, SCRAM and OAUTHBEARER servers what a client might
// send: any bytes are an error or a step, never a panic, and never an
// authenticated user without the password.
func FuzzSASLServers(f *testing.F) {
	users, err := newSASLUsers(SASLConfig{Users: map[string]string{"alice": "alice-secret"}, Mechanisms: mechanisms, ScramIterations: 4096}, time.Now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("\x00alice\x00wrong"), []byte(""))
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=alice,n=alice,r=x"), []byte("c=eSxhPWFsaWNlLA==,r=x,p="))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		for _, m := range mechanisms {
			s := users.server(m, &meta.Cluster{})
			_, user, err := s.step(first)
			if err == nil && user == "" {
				_, user, err = s.step(second)
			}
			if err == nil && user != "" {
				t.Fatalf("%s authenticated %q from %q, %q", m, user, first, second)
			}
		}
	})
}
