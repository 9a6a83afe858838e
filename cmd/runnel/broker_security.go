package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/runnel-dev/runnel/broker"
)

// brokerSecurityFlags adds the listener, TLS, SASL and authorizer flags of
// `runnel broker` to fs, filling sc; the function it returns finishes
// what the flags alone cannot (the mechanisms list).
func brokerSecurityFlags(fs *flag.FlagSet, sc *broker.SecurityConfig) func() error {
	fs.StringVar(&sc.Listeners, "listeners", "", "Kafka listeners `NAME://HOST:PORT,...` with NAME a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) or mapped to one by --listener-security-protocol-map (listeners; default: PLAINTEXT on --listen)")
	fs.StringVar(&sc.AdvertisedListeners, "advertised-listeners", "", "what clients of each listener are told, `NAME://HOST:PORT,...` (advertised.listeners; default: each listener's own address)")
	fs.StringVar(&sc.ProtocolMap, "listener-security-protocol-map", "", "`NAME:PROTOCOL,...` for listeners not named after their protocol (listener.security.protocol.map)")
	fs.StringVar(&sc.TLS.CertFile, "ssl-cert-file", "", "the broker's certificate chain, PEM `FILE` (ssl.keystore.certificate.chain); reloaded when it changes")
	fs.StringVar(&sc.TLS.KeyFile, "ssl-key-file", "", "the certificate's private key, PEM `FILE` (ssl.keystore.key)")
	fs.StringVar(&sc.TLS.CAFile, "ssl-ca-file", "", "CA certificates client certificates must chain to, PEM `FILE` (ssl.truststore.certificates)")
	fs.StringVar(&sc.TLS.ClientAuth, "ssl-client-auth", "none", "client certificates `MODE`: required, requested or none (ssl.client.auth)")
	fs.StringVar(&sc.TLS.PrincipalMappingRules, "ssl-principal-mapping-rules", "", "how a client certificate's subject becomes its principal: `RULES` RULE:PATTERN/REPLACEMENT/[LU],...,DEFAULT (ssl.principal.mapping.rules; default DEFAULT, the subject)")
	mechs := fs.String("sasl-enabled-mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", "SASL `MECHANISMS` clients may use: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER (sasl.enabled.mechanisms)")
	fs.StringVar(&sc.SASL.UsersFile, "sasl-users-file", "", "SASL users, a `FILE` of NAME=PASSWORD lines, for PLAIN and SCRAM")
	fs.StringVar(&sc.SASL.OAuthBearer.JWKSFile, "sasl-oauthbearer-jwks-file", "", "OAUTHBEARER: the JSON Web Key Set `FILE` whose keys sign valid tokens (sasl.oauthbearer.jwks.endpoint.url); reloaded when it changes")
	audience := fs.String("sasl-oauthbearer-expected-audience", "", "OAUTHBEARER: `AUDIENCES`, comma-separated, one of which a token's aud must hold (sasl.oauthbearer.expected.audience)")
	fs.StringVar(&sc.SASL.OAuthBearer.Issuer, "sasl-oauthbearer-expected-issuer", "", "OAUTHBEARER: the `ISSUER` a token's iss must be (sasl.oauthbearer.expected.issuer)")
	fs.StringVar(&sc.SASL.OAuthBearer.SubClaim, "sasl-oauthbearer-sub-claim-name", "sub", "OAUTHBEARER: the token `CLAIM` naming the principal (sasl.oauthbearer.sub.claim.name)")
	fs.BoolVar(&sc.SASL.OAuthBearer.Unsecured, "sasl-oauthbearer-unsecured", false, "OAUTHBEARER: accept unsigned tokens (alg none), for development only: anyone can claim any principal")
	fs.DurationVar(&sc.SASL.ConnectionsMaxReauth, "connections-max-reauth", 0, "SASL session lifetime `DURATION`; clients re-authenticate before it ends (connections.max.reauth.ms; default 0, no expiry)")
	fs.BoolVar(&sc.Authorizer.Enabled, "authorizer", false, "check every request against the ACLs (authorizer.class.name=StandardAuthorizer); manage them with `runnel acls`")
	superUsers := fs.String("super-users", "", "`PRINCIPALS` allowed everything, e.g. User:admin;User:broker (super.users; ',' separates too)")
	fs.BoolVar(&sc.Authorizer.AllowEveryoneIfNoACLFound, "allow-everyone-if-no-acl-found", false, "with --authorizer, let everyone at a resource no ACL names (allow.everyone.if.no.acl.found)")
	fs.StringVar(&sc.InterBroker.ListenerName, "inter-broker-listener-name", "", "the listener `NAME` other brokers connect to, with its security protocol (inter.broker.listener.name; default: the first listener)")
	fs.StringVar(&sc.InterBroker.SASLMechanism, "sasl-mechanism-inter-broker-protocol", "PLAIN", "`MECHANISM` this broker authenticates with on a SASL inter-broker listener: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (sasl.mechanism.inter.broker.protocol)")
	fs.StringVar(&sc.InterBroker.Username, "inter-broker-sasl-username", "", "this broker's SASL `USER` on a SASL inter-broker listener; make User:USER a super user (or grant it CLUSTER_ACTION)")
	passwordFile := fs.String("inter-broker-sasl-password-file", "", "`FILE` whose first line is the inter-broker SASL user's password")
	fs.BoolVar(&sc.ControllerTLS, "controller-tls", false, "mutual TLS on the controller listener (Raft and metadata calls) with the --ssl-cert-file, --ssl-key-file and --ssl-ca-file of every node: a peer without a certificate from the CA is refused (controller listener mapped to SSL, ssl.client.auth=required)")
	return func() error {
		if *passwordFile != "" {
			b, err := os.ReadFile(*passwordFile)
			if err != nil {
				return fmt.Errorf("--inter-broker-sasl-password-file: %w", err)
			}
			line, _, _ := strings.Cut(string(b), "\n")
			sc.InterBroker.Password = strings.TrimRight(line, "\r")
		}
		sc.Authorizer.SuperUsers = nil
		for p := range strings.FieldsFuncSeq(*superUsers, func(r rune) bool { return r == ';' || r == ',' }) {
			if p = strings.TrimSpace(p); p != "" {
				sc.Authorizer.SuperUsers = append(sc.Authorizer.SuperUsers, p)
			}
		}
		sc.SASL.Mechanisms = nil
		for m := range strings.SplitSeq(*mechs, ",") {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
				sc.SASL.Mechanisms = append(sc.SASL.Mechanisms, m)
			}
		}
		if len(sc.SASL.Mechanisms) == 0 {
			return fmt.Errorf("--sasl-enabled-mechanisms is empty")
		}
		for a := range strings.SplitSeq(*audience, ",") {
			if a = strings.TrimSpace(a); a != "" {
				sc.SASL.OAuthBearer.Audience = append(sc.SASL.OAuthBearer.Audience, a)
			}
		}
		return nil
	}
}

// printListeners prints one line per listener when there are several
// kinds, after the "listening on" line.
func printListeners(w io.Writer, b *broker.Broker, sc *broker.SecurityConfig) {
	if sc.Listeners == "" {
		return
	}
	for _, name := range b.ListenerNames() {
		fmt.Fprintf(w, "runnel broker listener %s on %s\n", name, b.ListenerAddr(name))
	}
}
