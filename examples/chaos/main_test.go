package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/io-tether/tether/tethertest/records"
	"github.com/stretchr/testify/require"
)

// TestRun runs the demo for 4 s, long enough for a blackhole that outlasts
// the read idle timeout, and checks its summary and verdict.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	logFile := filepath.Join(t.TempDir(), "tether.log")
	var stdout, stderr strings.Builder
	err := run(ctx, []string{"-d", "4s", "-log", logFile}, &stdout, &stderr)
	out := stdout.String()
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, stderr.String())
	require.Empty(t, stderr.String())

	require.Contains(t, out, "\nverdict: PASS\n")
	require.Regexp(t, `(?m)^ +\d+\.\d\ds  status   sent \d+  verified \d+  reconnects \d+  (up|DOWN)`, out)
	for _, row := range []string{"corrupted", "reordered", "duplicated", "missing, no reconnect"} {
		require.Regexp(t, `(?m)^  `+row+` +0$`, out)
	}
	require.Regexp(t, `(?m)^  records sent +\d+ +Write returned nil$`, out)
	require.Regexp(t, `(?m)^  verified +\d+ +came back intact and in order$`, out)
	require.Regexp(t, `(?m)^  lost in flight +\d+ +with connections that died \(\d+ dropped by Write\)$`, out)
	m := regexp.MustCompile(`(?m)^  reconnects +(\d+) `).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.NotContains(t, []string{"0", "1", "2"}, m[1], "a drop, a reset and a refusal need 3 reconnects at least")

	// The table of faults: each noticed, and the stream back after each.
	// A Write after the peer's FIN draws a reset, which the kernel may
	// report to the Read before the FIN.
	broken := `(EOF|connection reset|broken pipe)`
	for _, f := range []struct{ name, noticed string }{
		{"drop", broken},
		{"reset", broken},
		{"refuse", broken},
		{"blackhole", "read idle timeout"},
	} {
		require.Regexp(t, `(?m)^  `+f.name+` +\S+ +\S+ +`+f.noticed+` +\d[\d.]*m?s$`, out)
	}

	log, err := os.ReadFile(logFile)
	require.NoError(t, err)
	require.Contains(t, string(log), `msg="tether reconnected" action=accept`)
}

// TestRunSession runs the demo through a session: the same faults, and
// nothing lost in flight.
func TestRunSession(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	err := run(ctx, []string{"-d", "4s", "-session"}, &stdout, &stderr)
	out := stdout.String()
	require.NoError(t, err, "stdout:\n%s\nstderr:\n%s", out, stderr.String())
	require.Empty(t, stderr.String())
	require.Contains(t, out, "records -> session -> fault proxy")
	require.Contains(t, out, "\nverdict: PASS\n")
	require.Contains(t, out, "\n  0 lost in flight: the session replayed")
	for _, row := range []string{"lost in flight", "cut by a reconnect", "corrupted", "reordered", "duplicated", "missing, no reconnect"} {
		require.Regexp(t, `(?m)^  `+row+` +0\b`, out)
	}
	m := regexp.MustCompile(`(?m)^  records sent +(\d+) `).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.Regexp(t, `(?m)^  verified +`+m[1]+` `, out, "every record sent came back")
	m = regexp.MustCompile(`(?m)^  reconnects +(\d+) `).FindStringSubmatch(out)
	require.NotNil(t, m, out)
	require.NotContains(t, []string{"0", "1", "2"}, m[1], "a drop, a reset and a refusal need 3 reconnects at least")
}

// TestReportFails: the verdict fails on a record missing with no
// reconnect, and on a stream that never came back.
func TestReportFails(t *testing.T) {
	tests := []struct {
		name   string
		stream []byte
		want   string
	}{
		{"missing", append(records.Append(nil, seed, 0), records.Append(nil, seed, 2)...),
			"verdict: FAIL\n  1 records corrupted, reordered, duplicated or missing with no reconnect\n" +
				"  records 1 to 1 missing with no reconnect in between\n"},
		{"never back", nil,
			"verdict: FAIL\n  the stream did not recover after the last fault\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			start := time.Now()
			c := newClient(nil, nil, config{rate: 1, idle: time.Second}, nil, newDisplay(&out, false, start), start)
			for range 3 {
				require.NoError(t, c.send.Send(io.Discard, 1))
			}
			c.check.Feed(tt.stream, 1)
			require.ErrorIs(t, c.report(), errVerdict)
			require.True(t, strings.HasSuffix(out.String(), tt.want), "output:\n%s", out.String())
		})
	}
}

// TestUsage: a bad command line is a usage error, reported on stderr.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-d", "0"}, {"-rate", "0"}, {"-v", "-log", "x"}, {"extra"}, {"-nosuchflag"}, {"-session", "-upstream", "127.0.0.1:1"}} {
		var stderr strings.Builder
		err := run(context.Background(), args, &strings.Builder{}, &stderr)
		require.ErrorIs(t, err, errUsage, "run(%q)", args)
		require.Contains(t, stderr.String(), "usage: chaos [flags]", "run(%q)", args)
	}
	require.ErrorIs(t, run(context.Background(), []string{"-h"}, &strings.Builder{}, &strings.Builder{}), flag.ErrHelp)
}

// TestDisplay: on a terminal the status line redraws in place below the
// lines; otherwise it is a line of its own.
func TestDisplay(t *testing.T) {
	var b strings.Builder
	d := newDisplay(&b, true, time.Now())
	d.setStatus("status 1")
	d.printf("event\n")
	d.setStatus("status 2")
	d.through(&b).Write([]byte("log\n"))
	d.clearStatus()
	require.Equal(t, "\r\x1b[Kstatus 1"+"\r\x1b[Kevent\nstatus 1"+"\r\x1b[Kstatus 2"+"\r\x1b[Klog\nstatus 2"+"\r\x1b[K", b.String())

	b.Reset()
	d = newDisplay(&b, false, time.Now())
	d.setStatus("status 1")
	d.printf("event\n")
	d.clearStatus()
	require.Equal(t, "status 1\nevent\n", b.String())
}
