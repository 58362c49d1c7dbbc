// Package storm holds no code, only a test: TestStorm connects many Tethers
// to one server (a child process), which restarts on the same port. All come
// back, no goroutine is left, and the default policy's jitter spreads the
// redials. -storm=N sets how many (1000 by default; above 8000, run without
// -race, which allows 8128 goroutines).
//
//	go test -race ./e2e/storm
//	go test -run TestStorm -v ./e2e/storm -storm=10000
package storm
