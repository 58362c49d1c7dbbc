package tether

import (
	"sync/atomic"
)

// lockSlow acquires the operation lock of dir when its tryLock failed (the
// fast path, at the callers), honouring the deadline of dir and the end of
// the Tether while it waits.
func (t *Tether) lockSlow(dir direction) error {
	l := &t.half[dir].lock
	t.mu.Lock()
	if l.wake == nil {
		l.wake = make(chan struct{}, 1) // made when first needed: most Tethers never wait
	}
	wake := l.wake
	t.mu.Unlock()
	// unlock reads l.wake only after it sees this waiter: the write above
	// happens before.
	l.waiters.Add(1)
	defer l.waiters.Add(-1)
	for !l.tryLock() {
		if err := t.block(dir, wake); err != nil {
			return err
		}
	}
	return nil
}

// unlock releases the operation lock of dir.
func (t *Tether) unlock(dir direction) { t.half[dir].lock.unlock() }

// opLock is a mutex whose waiters can give up: the fast path is one atomic
// compare-and-swap; waiters select on wake with their deadline and Close.
type opLock struct {
	state   atomic.Int32
	waiters atomic.Int32
	wake    chan struct{} // made by the first waiter, under Tether.mu
}

func (l *opLock) tryLock() bool { return l.state.CompareAndSwap(0, 1) }

func (l *opLock) unlock() {
	l.state.Store(0)
	if l.waiters.Load() > 0 {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
}
