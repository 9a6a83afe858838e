package offsetspec

import (
	"testing"
	"time"
)

func TestParseDatetime(t *testing.T) {
	local := time.Date(2026, 3, 4, 5, 6, 7, 0, time.Local)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"1700000000123", time.UnixMilli(1700000000123)},
		{"2026-03-04T05:06:07Z", time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)},
		{"2026-03-04T05:06:07.25+02:00", time.Date(2026, 3, 4, 3, 6, 7, 250e6, time.UTC)},
		{"2026-03-04T05:06:07", local},
		{"2026-03-04T05:06:07.5", local.Add(500 * time.Millisecond)},
	} {
		got, err := ParseDatetime(tc.in)
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseDatetime(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "-5", "2026-03-04", "2026-03-04 05:06:07", "soon"} {
		if _, err := ParseDatetime(in); err == nil {
			t.Errorf("ParseDatetime(%q) succeeded", in)
		}
	}
}
