// Command record sends the cases of package ironicinput to a real Ironic
// (21.4, as ../shared/golden/start-ironic.sh starts it, with an empty
// database) and writes its answers, one JSON line per case, to the file the
// table test reads:
//
//	go run ./test/ironicinput/record -url http://127.0.0.1:6385 > test/ironicinput/testdata/ironic-21.4.jsonl
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/ferric-metal/ferric/test/ironicinput"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:6385", "Ironic API")
	flag.Parse()
	hc := &http.Client{Timeout: 60 * time.Second}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	for _, c := range ironicinput.Cases() {
		a, err := ironicinput.Send(hc, *url, c)
		if err != nil {
			log.Fatalf("%s: %v", c.Name, err)
		}
		if c.Fixture && a.Status >= 300 {
			log.Fatalf("fixture %s: %d %s", c.Name, a.Status, a.Fault)
		}
		if err := enc.Encode(ironicinput.Recorded{Case: c, Ironic: a}); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "%3d %-45s %s\n", a.Status, c.Name, trunc(a.Fault))
	}
}

func trunc(s string) string {
	if len(s) > 110 {
		return s[:110] + "..."
	}
	return s
}
