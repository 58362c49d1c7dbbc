package main

import (
	"encoding/csv"
	"io"
	"strconv"
)

// csvFiles returns the CSV files this run has data for, by name.
func (b *bench) csvFiles() map[string]func(io.Writer) error {
	files := map[string]func(io.Writer) error{
		"summary.csv": func(w io.Writer) error { return writeTableCSV(w, b.rows) },
	}
	if len(b.tput) > 0 {
		files["throughput.csv"] = func(w io.Writer) error { return writeThroughputCSV(w, b.tput) }
	}
	if len(b.reconnects) > 0 {
		files["reconnect.csv"] = func(w io.Writer) error { return writeReconnectCSV(w, b.reconnects) }
	}
	if len(b.idle) > 0 {
		files["idle.csv"] = func(w io.Writer) error { return writeIdleCSV(w, b.idle) }
	}
	if b.storm != nil {
		files["storm.csv"] = func(w io.Writer) error { return writeStormCSV(w, b.storm) }
	}
	return files
}

func ftoa(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }

func writeCSV(w io.Writer, header []string, rows [][]string) error {
	cw := csv.NewWriter(w)
	cw.Write(header)
	cw.WriteAll(rows)
	return cw.Error()
}

func writeThroughputCSV(w io.Writer, runs []tputRun) error {
	rows := make([][]string, 0, len(runs))
	for _, r := range runs {
		rows = append(rows, []string{r.Part, r.Transport, r.Case, r.Via, strconv.Itoa(r.Round),
			strconv.FormatInt(r.Bytes, 10), ftoa(r.Seconds, 6), ftoa(r.MBps(), 1)})
	}
	return writeCSV(w, []string{"part", "transport", "case", "via", "round", "bytes", "seconds", "mb_per_s"}, rows)
}

func writeReconnectCSV(w io.Writer, samples []reconnectSample) error {
	rows := make([][]string, 0, len(samples))
	for _, s := range samples {
		rows = append(rows, []string{s.Transport, s.Case, s.Via, strconv.Itoa(s.Index), ftoa(s.Micros, 1), s.Kind})
	}
	return writeCSV(w, []string{"transport", "case", "via", "sample", "us", "kind"}, rows)
}

func writeIdleCSV(w io.Writer, res []idleResult) error {
	rows := make([][]string, 0, len(res))
	for _, r := range res {
		rows = append(rows, []string{r.Transport, r.Via, strconv.Itoa(r.N),
			strconv.FormatInt(r.HeapBytes, 10), strconv.Itoa(r.Goroutines)})
	}
	return writeCSV(w, []string{"transport", "via", "n", "heap_bytes", "goroutines"}, rows)
}

func writeStormCSV(w io.Writer, s *stormResult) error {
	rows := make([][]string, 0, len(s.Timeline))
	width := stormBucket.Seconds()
	for _, bk := range s.Timeline {
		rows = append(rows, []string{ftoa(bk.Start, 3), ftoa(width, 3), strconv.Itoa(bk.Dials),
			strconv.Itoa(bk.Fails), strconv.Itoa(bk.Ups), strconv.Itoa(bk.Connected)})
	}
	return writeCSV(w, []string{"t_s", "bucket_s", "dials", "failed_dials", "reconnects", "connected"}, rows)
}
