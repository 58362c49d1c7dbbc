package session_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strings"

	"github.com/io-tether/tether/session"
	tethertcp "github.com/io-tether/tether/tcp"
)

// A session server that answers each line in upper case, and a client
// whose stream would survive any number of reconnects.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	sl := session.NewListener(ln)
	defer sl.Close()
	go func() {
		for {
			c, err := sl.Accept() // one net.Conn per session; resumes never get here
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c) // until the client's CloseWrite
				c.Write([]byte(strings.ToUpper(string(b))))
			}()
		}
	}()

	c, err := session.Dial(context.Background(), &tethertcp.Dialer{}, sl.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hello, "))
	c.Write([]byte("session"))
	c.CloseWrite()
	reply, err := io.ReadAll(c)
	fmt.Printf("%s %v\n", reply, err)
	// Output: HELLO, SESSION <nil>
}
