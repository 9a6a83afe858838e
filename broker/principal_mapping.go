package broker

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Principal mapping, as Kafka's ssl.principal.mapping.rules: an SSL
// connection's principal is "User:" and a name made from its certificate's
// subject (an RFC 2253 distinguished name) by the first rule that applies:
//
//	RULE:PATTERN/REPLACEMENT/[L|U]   the DN must match PATTERN whole; the
//	                                 name is REPLACEMENT with $1, $2 ... the
//	                                 groups, lower- (L) or upper-cased (U)
//	DEFAULT                          the DN itself
//
// separated by commas or newlines, e.g.
// "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT". Without rules it is
// DEFAULT. A subject no rule applies to fails the connection, as Kafka's
// does. A '/' in a pattern or replacement is written "\/".

// ErrNoPrincipalRule: a certificate subject no mapping rule applies to.
var ErrNoPrincipalRule = errors.New("broker: no ssl.principal.mapping.rules rule applies")

type principalRule struct {
	isDefault bool
	re        *regexp.Regexp
	repl      string
	fold      byte // 'L', 'U' or 0
}

// ruleSplitter finds one rule at the start of what is left: DEFAULT, or
// RULE: with its pattern, replacement and case flag (each part may hold
// escaped characters, "\/" among them), then the separator.
var ruleSplitter = regexp.MustCompile(`^\s*(?:(DEFAULT)|RULE:((?:\\.|[^\\/])*)/((?:\\.|[^\\/])*)/([LU]?))\s*(?:[,\n]\s*|$)`)

// javaGroupRef is a Java-style group reference in a replacement, $1;
// Go's expander would read "$1abc" as a group named "1abc".
var javaGroupRef = regexp.MustCompile(`\$(\d+)`)

// parsePrincipalRules reads ssl.principal.mapping.rules; "" is DEFAULT.
func parsePrincipalRules(s string) ([]principalRule, error) {
	if strings.TrimSpace(s) == "" {
		return []principalRule{{isDefault: true}}, nil
	}
	var rules []principalRule
	rest := s
	for strings.TrimSpace(rest) != "" {
		m := ruleSplitter.FindStringSubmatch(rest)
		if m == nil {
			return nil, fmt.Errorf("broker: ssl.principal.mapping.rules: cannot parse %q: want RULE:PATTERN/REPLACEMENT/[LU] or DEFAULT", rest)
		}
		rest = rest[len(m[0]):]
		if m[1] != "" {
			rules = append(rules, principalRule{isDefault: true})
			continue
		}
		pattern := strings.ReplaceAll(m[2], `\/`, "/")
		re, err := regexp.Compile(`^(?:` + pattern + `)$`)
		if err != nil {
			return nil, fmt.Errorf("broker: ssl.principal.mapping.rules: pattern %q: %w", pattern, err)
		}
		repl := javaGroupRef.ReplaceAllString(strings.ReplaceAll(m[3], `\/`, "/"), "$${$1}")
		r := principalRule{re: re, repl: repl}
		if m[4] != "" {
			r.fold = m[4][0]
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// mapPrincipal applies the rules to a certificate's subject DN and returns
// the principal's name.
func mapPrincipal(rules []principalRule, dn string) (string, error) {
	for _, r := range rules {
		if r.isDefault {
			return dn, nil
		}
		m := r.re.FindStringSubmatchIndex(dn)
		if m == nil {
			continue
		}
		name := string(r.re.ExpandString(nil, r.repl, dn, m))
		switch r.fold {
		case 'L':
			name = strings.ToLower(name)
		case 'U':
			name = strings.ToUpper(name)
		}
		return name, nil
	}
	return "", fmt.Errorf("%w to %q", ErrNoPrincipalRule, dn)
}
