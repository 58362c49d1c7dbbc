package tether

import (
	"sync/atomic"
)

// lockSlow acquires s when tryLock failed, honouring the deadline of dir and
// the end of the Tether.
func (t *Tether) lockSlow(s *sem, dir direction) error {
	t.mu.Lock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1) // made when first needed: most Tethers never wait
	}
	wake := s.wake
	t.mu.Unlock()
	// unlock reads s.wake only after it sees this waiter: the write above
	// happens before.
	s.waiters.Add(1)
	defer s.waiters.Add(-1)
	for !s.tryLock() {
		if err := t.block(dir, wake); err != nil {
			return err
		}
	}
	return nil
}

// sem is a mutex whose waiters can give up: the fast path is one atomic
// compare-and-swap; waiters select on wake with their deadline and Close.
type sem struct {
	state   atomic.Int32
	waiters atomic.Int32
	wake    chan struct{} // made by the first waiter, under Tether.mu
}

func (s *sem) tryLock() bool { return s.state.CompareAndSwap(0, 1) }

func (s *sem) unlock() {
	s.state.Store(0)
	if s.waiters.Load() > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}
