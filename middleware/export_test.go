package middleware

// Circuits returns how many circuits b keeps, for the test of their cleanup.
func Circuits(b *Breaker) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.circuits)
}
