package inbox

import (
	"testing"
	"time"
)

func TestBusyWhileReceivingAndJustAfter(t *testing.T) {
	p := &Pipeline{epoch: time.Now()}
	if p.Busy() {
		t.Fatal("busy before any request")
	}
	leave := p.enter()
	if !p.Busy() {
		t.Fatal("not busy while a request is being received")
	}
	ended := time.Now()
	leave()
	// Just after a request the next one of the same peer is likely on its
	// way: still busy (unless this goroutine was descheduled for longer
	// than BusyLinger in between).
	if busy := p.Busy(); !busy && time.Since(ended) < BusyLinger {
		t.Error("not busy right after a request ended")
	}
	time.Sleep(BusyLinger + 5*time.Millisecond)
	if p.Busy() {
		t.Errorf("still busy %s after the last request ended", BusyLinger+5*time.Millisecond)
	}
}
