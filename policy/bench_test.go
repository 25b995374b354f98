package policy

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAdmitPeer measures the per-peer rate limit of a signed request:
// one peer host calling again and again, and a flood of hosts each seen
// once, which keeps the bounded table full and evicting.
func BenchmarkAdmitPeer(b *testing.B) {
	hosts := make([]string, 1<<16)
	for i := range hosts {
		hosts[i] = fmt.Sprintf("https://h%d.example/actors/a#main-key", i)
	}
	for _, tc := range []struct {
		name  string
		hosts int
	}{{"one-host", 1}, {"flood", len(hosts)}} {
		b.Run(tc.name, func(b *testing.B) {
			c := newClock()
			p, err := New(Config{PeerRate: 1e9, PeerBurst: 1e9, MaxEntries: DefaultMaxEntries, IdleTTL: time.Hour, Now: c.now})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if err := p.AdmitPeer(hosts[i%tc.hosts]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
