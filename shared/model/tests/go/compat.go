// compat prints Go's and prometheus/common's answers for a table of inputs, one per
// line: kind TAB hex(input) TAB output (outputs never contain a tab or newline
// because they are quoted or plain). Built by tests/go_compat.rs with
// GO111MODULE=off GOPATH=/usr/share/gocode (Debian's golang-github-prometheus-common-dev
// 0.39, the version Prometheus 2.42 builds with).
package main

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"
)

func esc(s string) string { return strconv.Quote(s) }

func main() {
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	line := func(kind, in, out string) {
		fmt.Fprintf(w, "%s\t%s\t%s\n", kind, hex.EncodeToString([]byte(in)), out)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	for in.Scan() {
		f := strings.SplitN(in.Text(), "\t", 2)
		if len(f) != 2 {
			continue
		}
		b, err := hex.DecodeString(f[1])
		if err != nil {
			panic(err)
		}
		s := string(b)
		switch f[0] {
		case "quote":
			line("quote", s, strconv.Quote(s))
		case "g":
			bits, _ := strconv.ParseUint(s, 16, 64)
			line("g", s, strconv.FormatFloat(math.Float64frombits(bits), 'g', -1, 64))
		case "v":
			bits, _ := strconv.ParseUint(s, 16, 64)
			line("v", s, fmt.Sprintf("%v", math.Float64frombits(bits)))
		case "model_duration":
			ms, _ := strconv.ParseInt(s, 10, 64)
			line("model_duration", s, model.Duration(time.Duration(ms)*time.Millisecond).String())
		case "go_duration":
			ms, _ := strconv.ParseInt(s, 10, 64)
			line("go_duration", s, (time.Duration(ms) * time.Millisecond).String())
		case "parse_model_duration":
			d, err := model.ParseDuration(s)
			if err != nil {
				line("parse_model_duration", s, "err "+esc(err.Error()))
			} else {
				line("parse_model_duration", s, strconv.FormatInt(int64(time.Duration(d)/time.Millisecond), 10))
			}
		case "parse_go_duration":
			d, err := time.ParseDuration(s)
			if err != nil {
				line("parse_go_duration", s, "err "+esc(err.Error()))
			} else {
				line("parse_go_duration", s, strconv.FormatInt(int64(d), 10))
			}
		case "label_name":
			line("label_name", s, strconv.FormatBool(model.LabelName(s).IsValid()))
		case "metric_name":
			line("metric_name", s, strconv.FormatBool(model.IsValidMetricName(model.LabelValue(s))))
		}
	}
}
