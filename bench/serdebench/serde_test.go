package serdebench

import (
	"reflect"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/runnel-dev/runnel/registry/registrytest"
	"github.com/runnel-dev/runnel/stream/serde"
)

// Customer is the benchmark's record: 10 fields of the usual kinds.
type Customer struct {
	ID        int64     `avro:"id" json:"id"`
	Name      string    `avro:"name" json:"name"`
	Email     string    `avro:"email" json:"email"`
	Age       int32     `avro:"age" json:"age"`
	Score     float64   `avro:"score" json:"score"`
	Active    bool      `avro:"active" json:"active"`
	Tags      []string  `avro:"tags" json:"tags"`
	Country   string    `avro:"country" json:"country"`
	Note      *string   `avro:"note" json:"note"`
	CreatedAt time.Time `avro:"created_at" json:"created_at"`
}

func sample() Customer {
	note := "prefers email"
	return Customer{ID: 912345678, Name: "Ada Lovelace", Email: "ada@example.com", Age: 36, Score: 98.25,
		Active: true, Tags: []string{"vip", "beta", "eu"}, Country: "GB", Note: &note,
		CreatedAt: time.UnixMilli(1_764_806_400_123).UTC()}
}

func newClient(tb testing.TB) *sr.Client { return registrytest.Client(tb) }

func avroSerde(tb testing.TB) serde.Serde[Customer] {
	s, err := serde.Avro[Customer](newClient(tb), serde.AvroTopic("customers"), serde.AvroNamespace("bench"))
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func hambaSchema(tb testing.TB) avro.Schema {
	text, err := serde.AvroSchemaOf[Customer]("bench")
	if err != nil {
		tb.Fatal(err)
	}
	s, err := avro.Parse(text)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// TestSameValues checks that each serde the benchmarks run gives the
// record back equal, and that the Avro serde and hamba/avro read each
// other's bytes (their encodings of arrays differ, as Avro allows: hamba
// writes block sizes).
func TestSameValues(t *testing.T) {
	v := sample()
	a := avroSerde(t)
	ab, err := a.Serialize(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Deserialize(ab); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("serde.Avro: %+v, %v", got, err)
	}
	j := serde.JSON[Customer]()
	jb, err := j.Serialize(v)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := j.Deserialize(jb); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("serde.JSON: %+v, %v", got, err)
	}
	hs := hambaSchema(t)
	hb, err := avro.Marshal(hs, v)
	if err != nil {
		t.Fatal(err)
	}
	var got Customer
	if err := avro.Unmarshal(hs, hb, &got); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("hamba/avro: %+v, %v", got, err)
	}
	got = Customer{}
	if err := avro.Unmarshal(hs, ab[5:], &got); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("hamba/avro reading serde.Avro's bytes: %+v, %v", got, err)
	}
	if got, err := a.Deserialize(append(ab[:5:5], hb...)); err != nil || !reflect.DeepEqual(got, v) {
		t.Fatalf("serde.Avro reading hamba/avro's bytes: %+v, %v", got, err)
	}
}

func BenchmarkSerialize(b *testing.B) {
	v := sample()
	b.Run("serde.Avro", func(b *testing.B) {
		s := avroSerde(b)
		if _, err := s.Serialize(v); err != nil { // registers the schema
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Serialize(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serde.JSON", func(b *testing.B) {
		s := serde.JSON[Customer]()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Serialize(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hamba-avro", func(b *testing.B) {
		hs := hambaSchema(b)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := avro.Marshal(hs, v); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDeserialize(b *testing.B) {
	v := sample()
	b.Run("serde.Avro", func(b *testing.B) {
		s := avroSerde(b)
		data, err := s.Serialize(v)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Deserialize(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serde.JSON", func(b *testing.B) {
		s := serde.JSON[Customer]()
		data, _ := s.Serialize(v)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Deserialize(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hamba-avro", func(b *testing.B) {
		hs := hambaSchema(b)
		data, _ := avro.Marshal(hs, v)
		b.ReportAllocs()
		for b.Loop() {
			var out Customer
			if err := avro.Unmarshal(hs, data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRoundTrip serializes and deserializes one record: the issue's
// target compares this figure of serde.Avro with serde.JSON's.
func BenchmarkRoundTrip(b *testing.B) {
	v := sample()
	run := func(b *testing.B, s serde.Serde[Customer]) {
		if _, err := s.Serialize(v); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			data, err := s.Serialize(v)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Deserialize(data); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("serde.Avro", func(b *testing.B) { run(b, avroSerde(b)) })
	b.Run("serde.JSON", func(b *testing.B) { run(b, serde.JSON[Customer]()) })
	b.Run("hamba-avro", func(b *testing.B) {
		hs := hambaSchema(b)
		b.ReportAllocs()
		for b.Loop() {
			data, err := avro.Marshal(hs, v)
			if err != nil {
				b.Fatal(err)
			}
			var out Customer
			if err := avro.Unmarshal(hs, data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
