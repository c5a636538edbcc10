// Command record sends the cases of package ironicinput to the real
// services and writes their answers, one JSON line per case, to the files
// the table tests read:
//
//	go run ./test/ironicinput/record -url http://127.0.0.1:6385 > test/ironicinput/testdata/ironic-21.4.jsonl
//	go run ./test/ironicinput/record -service inspector -url http://127.0.0.1:6385 -inspector-url http://127.0.0.1:15050 > test/ironicinput/testdata/ironic-inspector-11.1.jsonl
//	go run ./test/ironicinput/record -service image -image-url http://127.0.0.1:19292 > test/ironicinput/testdata/glance-25.1.jsonl
//
// Ironic 21.4 is the one ../shared/golden/start-ironic.sh starts, with an
// empty database; ironic-inspector 11.1 and glance-api 25.1 are Debian 12's,
// started by record.sh. record.sh runs all of it.
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
	service := flag.String("service", ironicinput.Ironic, "what to record: ironic, inspector or image")
	url := flag.String("url", "http://127.0.0.1:6385", "Ironic API")
	inspURL := flag.String("inspector-url", "http://127.0.0.1:5050", "ironic-inspector API")
	imageURL := flag.String("image-url", "http://127.0.0.1:9292", "Glance API")
	flag.Parse()
	hc := &http.Client{Timeout: 60 * time.Second}
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	if *service == ironicinput.Ironic {
		recordIronic(hc, *url, enc)
		return
	}
	var calls []ironicinput.Call
	eps := ironicinput.Endpoints{ironicinput.Ironic: *url}
	switch *service {
	case ironicinput.Inspector:
		calls = ironicinput.InspectorCalls()
		eps[ironicinput.Inspector] = *inspURL
	case ironicinput.Image:
		calls = ironicinput.ImageCalls()
		eps[ironicinput.Image] = *imageURL
	default:
		log.Fatalf("unknown service %q", *service)
	}
	for _, c := range calls {
		a, err := ironicinput.SendCall(hc, eps, c)
		if err != nil {
			log.Fatalf("%s: %v", c.Name, err)
		}
		if c.Fixture && a.Status >= 300 {
			log.Fatalf("fixture %s: %d %s", c.Name, a.Status, a.Fault)
		}
		if err := enc.Encode(ironicinput.RecordedCall{Call: c, Real: a}); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "%3d %-45s %s\n", a.Status, c.Name, trunc(a.Fault))
	}
}

func recordIronic(hc *http.Client, url string, enc *json.Encoder) {
	for _, c := range ironicinput.Cases() {
		a, err := ironicinput.Send(hc, url, c)
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
