package main

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestAvro runs the example on its embedded broker and registry: every
// order the service wrote with its older schema comes back priced, read
// from Avro records the application wrote.
func TestAvro(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out bytes.Buffer
	got, err := Run(ctx, nil, "", t.TempDir(), &out)
	if err != nil {
		t.Fatal(err)
	}
	var want []Total
	for _, o := range Orders() {
		want = append(want, Price(o))
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("totals\n got %+v\nwant %+v", got, want)
	}
	if want[2].Amount != 191 || !strings.Contains(out.String(), "order 3  ann    3 items    191.00") {
		t.Fatalf("printed\n%s", out.String())
	}
}
