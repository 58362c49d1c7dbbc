package records_test

import (
	"bytes"
	"fmt"

	"github.com/io-tether/tether/tethertest/records"
)

// A stream of records crosses two connections: the first dies with half of
// the fifth record delivered. The Checker sees the reads, with the
// generation of each read's connection, and Compare says what was lost: the
// record in flight on the dead connection, and nothing else.
func Example() {
	const seed = 7
	s := records.NewSender(seed)
	var conn1, conn2 bytes.Buffer
	s.Send(&conn1, 3) // records 0-2 arrive
	s.Send(&conn1, 2) // records 3 and 4: the connection dies under 4
	s.Send(&conn2, 3) // records 5-7, on the next connection

	c := records.NewChecker(seed, nil)
	delivered := conn1.Bytes()[:conn1.Len()-len(records.Append(nil, seed, 4))/2]
	c.Feed(delivered[:100], 1) // reads split records anywhere
	c.Feed(delivered[100:], 1)
	c.Feed(conn2.Bytes(), 2) // ReadGeneration says: connection 2

	r := c.Result()
	fmt.Println("received:", r.Received, "last:", r.Last, "cut:", r.Cut, "gaps:", r.Gaps)
	fmt.Println("violations:", r.Failures())
	t := records.Compare(s, c)
	fmt.Println("sent:", t.Sent, "lost in flight:", t.Lost)
	// Output:
	// received: 7 last: 7 cut: 1 gaps: [{4 4}]
	// violations: 0
	// sent: 8 lost in flight: 1
}
