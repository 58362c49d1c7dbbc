package tcp_test

import (
	"testing"

	"github.com/io-tether/tether/internal/transporttest"
)

func TestMain(m *testing.M) { transporttest.Main(m) }
