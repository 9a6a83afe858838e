package meta

import (
	"errors"
	"testing"
)

// SCRAM credentials and client quotas survive a restart, both from the
// Raft log and from a snapshot, and an alteration applies whole.
func TestStoreScramAndQuotasPersist(t *testing.T) {
	for _, snap := range []bool{false, true} {
		name := "log"
		if snap {
			name = "snapshot"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir)
			cred := ScramCredential{Salt: []byte("salt"), Iterations: 4096, StoredKey: []byte("sk"), ServerKey: []byte("vk")}
			err := s.AlterScramCredentials(ctx(t), ScramAlteration{Upsertions: []ScramUpsertion{
				{User: "alice", Mechanism: ScramSHA256, Credential: cred},
				{User: "alice", Mechanism: ScramSHA512, Credential: cred},
				{User: "bob", Mechanism: ScramSHA256, Credential: cred},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.AlterScramCredentials(ctx(t), ScramAlteration{Deletions: []ScramDeletion{{User: "bob", Mechanism: ScramSHA256}, {User: "alice", Mechanism: ScramSHA512}}}); err != nil {
				t.Fatal(err)
			}
			// An unknown mechanism refuses the whole alteration.
			err = s.AlterScramCredentials(ctx(t), ScramAlteration{
				Upsertions: []ScramUpsertion{{User: "carol", Mechanism: ScramSHA256, Credential: cred}, {User: "carol", Mechanism: "MD5", Credential: cred}},
			})
			if !errors.Is(err, ErrUnknownScramMechanism) {
				t.Fatalf("unknown mechanism: %v", err)
			}
			clientDefault := QuotaEntity{ClientID: DefaultName()}
			aliceApp := QuotaEntity{User: Named("alice"), ClientID: Named("app")}
			if err := s.AlterQuotas(ctx(t), []QuotaAlteration{
				{Entity: clientDefault, Set: map[string]float64{"producer_byte_rate": 1024, "consumer_byte_rate": 2048}},
				{Entity: aliceApp, Set: map[string]float64{"request_percentage": 50}},
			}); err != nil {
				t.Fatal(err)
			}
			if err := s.AlterQuotas(ctx(t), []QuotaAlteration{{Entity: clientDefault, Remove: []string{"consumer_byte_rate"}}}); err != nil {
				t.Fatal(err)
			}
			if err := s.AlterQuotas(ctx(t), []QuotaAlteration{{Entity: QuotaEntity{}, Set: map[string]float64{"x": 1}}}); !errors.Is(err, ErrInvalidQuotaEntity) {
				t.Fatalf("empty entity: %v", err)
			}
			if snap {
				if err := s.raft.Snapshot().Error(); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()

			s = openStore(t, dir)
			defer s.Close()
			cl := s.Cluster()
			if len(cl.ScramUsers) != 1 || len(cl.ScramUsers["alice"]) != 1 || cl.ScramUsers["alice"][ScramSHA256].Iterations != 4096 ||
				string(cl.ScramUsers["alice"][ScramSHA256].StoredKey) != "sk" {
				t.Fatalf("scram users after restart: %+v", cl.ScramUsers)
			}
			if len(cl.Quotas) != 2 || len(cl.Quotas[clientDefault]) != 1 || cl.Quotas[clientDefault]["producer_byte_rate"] != 1024 ||
				cl.Quotas[aliceApp]["request_percentage"] != 50 {
				t.Fatalf("quotas after restart: %+v", cl.Quotas)
			}
		})
	}
}
