// Package tlsalert reads the TLS alert that a peer sent out of the errors of
// crypto/tls, which reports it in a type of its own that it does not export.
package tlsalert

import (
	"crypto/tls"
	"net"
	"reflect"
)

// Remote returns the TLS alert that a peer sent, as crypto/tls reports it:
// a *net.OpError "remote error" whose Err is of an unexported uint8 type of
// crypto/tls, anywhere in err's chain (an error that wraps it in another
// *net.OpError included). ok is false when err holds no such alert.
func Remote(err error) (alert tls.AlertError, ok bool) {
	for err != nil {
		if oe, isOp := err.(*net.OpError); isOp && oe.Op == "remote error" && oe.Err != nil {
			v := reflect.ValueOf(oe.Err)
			if v.Kind() == reflect.Uint8 && v.Type().PkgPath() == "crypto/tls" {
				return tls.AlertError(v.Uint()), true
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if alert, ok := Remote(e); ok {
					return alert, true
				}
			}
			return 0, false
		default:
			return 0, false
		}
	}
	return 0, false
}
