package attempt_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/io-tether/tether/internal/attempt"
)

// The form of every dialer's errors: the transport, the address, the cause.
func ExampleError() {
	err := attempt.Error("quic", "db.internal:4433", &attempt.TimeoutError{Pkg: "tether/quic", After: 10 * time.Second})
	fmt.Println(err)
	var oe *net.OpError
	fmt.Println(errors.As(err, &oe), oe.Net, oe.Addr, oe.Timeout(), errors.Is(err, context.DeadlineExceeded))
	// Output:
	// dial quic db.internal:4433: tether/quic: no connection within 10s
	// true quic db.internal:4433 true true
}
