package broker

import "testing"

// The fetch budget hands out what is free up to what a fetch wants, at
// least one batch's worth or nothing, settles to what was read, and wakes
// watchers when bytes come back.
func TestByteBudgetFetchReserveSettle(t *testing.T) {
	fb := newFetchBudget(10, 3)
	if n := fb.reserve(5); n != 5 {
		t.Fatalf("reserve 5 of 10: %d", n)
	}
	// A fetch that wants less than a batch gets a batch's worth: its
	// first batch is returned whatever its limit.
	if n := fb.reserve(1); n != 3 {
		t.Fatalf("reserve 1 with a batch of 3: %d, want 3", n)
	}
	// 2 free, less than a batch: nothing.
	if n := fb.reserve(5); n != 0 {
		t.Fatalf("reserve with 2 free and a batch of 3: %d, want 0", n)
	}
	if fb.hasRoom() {
		t.Fatal("room for a batch with 2 free")
	}
	wake := make(chan struct{}, 1)
	fb.watch(wake)
	// The first read 2 of its 5: 3 come back, and the watcher hears.
	if c := fb.settle(5, 2); c != 2 {
		t.Fatalf("settle: charge %d, want 2", c)
	}
	select {
	case <-wake:
	default:
		t.Fatal("watcher not woken when bytes came back")
	}
	fb.unwatch(wake)
	if n := fb.reserve(100); n != 5 {
		t.Fatalf("reserve 100 with 5 free: %d, want 5", n)
	}
	// A first batch larger than message.max.bytes overdraws by its
	// excess, for as long as it is held.
	if c := fb.settle(5, 7); c != 7 || fb.inUse() != 12 || fb.maxInUse() != 12 {
		t.Fatalf("overdraw: charge %d, in use %d, peak %d", c, fb.inUse(), fb.maxInUse())
	}
	fb.release(7)
	fb.release(2)
	fb.release(3)
	if n := fb.inUse(); n != 0 {
		t.Fatalf("in use %d after every release", n)
	}
}

// Fetches waiting for room are served in the order they began to wait:
// bytes given back wake the longest waiter only, no one else may take
// them first, and a waiter that leaves passes its turn on.
func TestFetchBudgetWaitersInOrder(t *testing.T) {
	fb := newFetchBudget(10, 3)
	held := fb.reserve(10)
	a, b, c := make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{}, 1)
	woken := func(w chan struct{}) bool {
		select {
		case <-w:
			return true
		default:
			return false
		}
	}
	fb.watch(a)
	fb.watch(b)
	fb.watch(a) // watching again keeps a's place
	fb.release(4)
	held -= 4
	if !woken(a) || woken(b) {
		t.Fatal("bytes given back must wake the first waiter only")
	}
	if n := fb.reserveFor(5, b); n != 0 {
		t.Fatalf("the second waiter took %d before the first", n)
	}
	if n := fb.reserve(5); n != 0 {
		t.Fatalf("a fetch not waiting took %d before the waiters", n)
	}
	if n := fb.reserveFor(5, a); n != 4 {
		t.Fatalf("the first waiter got %d, want the 4 free", n)
	}
	fb.watch(c)
	fb.release(4) // a's bytes back: b's turn
	if !woken(b) || woken(c) {
		t.Fatal("after the first was served, the second's turn")
	}
	fb.unwatch(b) // b gave up (its wait ended): c's turn, with room
	if !woken(c) {
		t.Fatal("a waiter that leaves must pass its turn on")
	}
	if n := fb.reserveFor(10, c); n != 4 {
		t.Fatalf("the last waiter got %d, want 4", n)
	}
	if n := fb.reserve(1); n != 0 {
		t.Fatalf("reserve with 2 free: %d", n)
	}
	fb.release(4)
	fb.release(held)
	if fb.inUse() != 0 {
		t.Fatalf("in use %d after every release", fb.inUse())
	}
}
