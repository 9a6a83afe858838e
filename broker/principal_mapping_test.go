package broker

import (
	"errors"
	"testing"
)

// The rules map subjects as Kafka's SslPrincipalMapper does: first rule
// that matches the whole DN, Java-style $N groups, L and U, DEFAULT, and
// an error when none applies.
func TestPrincipalMappingRules(t *testing.T) {
	rules, err := parsePrincipalRules(`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,
		RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,
		RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U,
		RULE:^.*[Cc][Nn]=([a-zA-Z0-9.\/]*).*$/$1x/`)
	if err != nil {
		t.Fatal(err)
	}
	for dn, want := range map[string]string{
		"CN=kafka-app,OU=ServiceUsers,O=Example":           "kafka-app",
		"CN=Duke,OU=JavaSoft,O=Sun,L=Palo Alto,ST=CA,C=US": "duke@javasoft",
		"cn=duke,ou=javasoft,dc=sun,dc=com":                "DUKE@JAVASOFT",
		"OU=Other,CN=a/b":                                  "a/bx",
	} {
		got, err := mapPrincipal(rules, dn)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", dn, got, err, want)
		}
	}
	if _, err := mapPrincipal(rules, "O=NoCommonName"); !errors.Is(err, ErrNoPrincipalRule) {
		t.Errorf("no rule applies: %v", err)
	}
	withDefault, err := parsePrincipalRules("RULE:^CN=(.*?),O=Example$/$1/L,DEFAULT")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := mapPrincipal(withDefault, "CN=Zed,O=Example"); got != "zed" {
		t.Errorf("rule before DEFAULT: %q", got)
	}
	if got, _ := mapPrincipal(withDefault, "CN=Zed,O=Other"); got != "CN=Zed,O=Other" {
		t.Errorf("DEFAULT: %q", got)
	}
	for _, bad := range []string{"RULE:^CN=(.*$/$1/", "RULE:no-slashes", "SOMETHING", "RULE:a/b/X"} {
		if _, err := parsePrincipalRules(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
