package broker

import (
	"math/rand/v2"
	"testing"
)

// Every size gets the smallest class that holds it, at most a quarter
// larger than the size (above the smallest class), and a class's capacity
// maps back to that class.
func TestFrameClass(t *testing.T) {
	prev := -1
	for _, size := range []int{1, minPooledFrame - 1, minPooledFrame, minPooledFrame + 1, 5000, 5120, 5121, 1 << 20, 1<<20 + 1, 4725891, 5838035, 100 << 20, 1<<31 - 1} {
		class, capacity := frameClass(size)
		if capacity < size || class < 0 || class >= len(framePools) {
			t.Fatalf("size %d: class %d capacity %d", size, class, capacity)
		}
		if size > minPooledFrame && float64(capacity) > 1.25*float64(size) {
			t.Errorf("size %d: capacity %d wastes more than a quarter", size, capacity)
		}
		if c2, cap2 := frameClass(capacity); c2 != class || cap2 != capacity {
			t.Errorf("capacity %d: class %d/%d, want %d/%d", capacity, c2, cap2, class, capacity)
		}
		if class < prev {
			t.Errorf("size %d: class %d below the previous size's %d", size, class, prev)
		}
		prev = class
	}
	// Classes are ordered by capacity, and a size one above a class's
	// capacity goes to the next class.
	for range 10000 {
		size := minPooledFrame + rand.IntN(64<<20)
		class, capacity := frameClass(size)
		if next, _ := frameClass(capacity + 1); next != class+1 {
			t.Fatalf("size %d: class %d capacity %d; capacity+1 in class %d", size, class, capacity, next)
		}
		if _, below := frameClass(size - 1); below > capacity {
			t.Fatalf("size %d: a smaller size has a larger capacity %d > %d", size, below, capacity)
		}
	}
}

// A frame given back is handed out again for a frame of about its size,
// not for a larger one; buffers of no class are not pooled.
func TestFramePoolReuse(t *testing.T) {
	const size = 4725891 // a 1 KiB producer's request over six partitions
	buf := getFrame(size)
	if len(buf) != size {
		t.Fatalf("len %d, want %d", len(buf), size)
	}
	putFrame(buf)
	// sync.Pool may drop what it holds (a GC between): try a few times.
	reused := false
	for range 10 {
		again := getFrame(size + 1000)
		if len(again) != size+1000 {
			t.Fatalf("len %d, want %d", len(again), size+1000)
		}
		if &again[0] == &buf[0] {
			reused = true
			break
		}
		putFrame(again)
		putFrame(buf)
	}
	if !reused {
		t.Fatal("a pooled frame of the same class was never handed out again")
	}
	_, capacity := frameClass(size)
	if bigger := getFrame(capacity + 1); cap(bigger) == capacity {
		t.Fatalf("a frame of %d bytes got a buffer of %d", capacity+1, cap(bigger))
	}
	odd := make([]byte, 10000, 10001)
	putFrame(odd) // not of a class: dropped, not handed out for 10000
	if got := getFrame(10000); cap(got) == 10001 {
		t.Fatal("a buffer of no class's capacity was pooled")
	}
}
