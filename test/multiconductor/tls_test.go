package multiconductor

import (
	"context"
	"testing"
	"time"

	"github.com/ferric-metal/ferric/conductor/service"
	"github.com/ferric-metal/ferric/conductor/store/etcdtest"
)

// A conductor reaches an etcd cluster that speaks TLS and wants client
// certificates (--etcd-cacert/--etcd-cert/--etcd-key); without a client
// certificate it refuses to start instead of running without its store.
func TestEtcdOverTLS(t *testing.T) {
	srv, certs := etcdtest.StartTLS(t)
	c := startConductorWith(t, "tls-a", srv.Endpoint, func(cfg *service.Config) {
		cfg.EtcdPrefix, cfg.EtcdCACert, cfg.EtcdCert, cfg.EtcdKey = "/tls", certs.CA, certs.ClientCert, certs.ClientKey
	})
	if code, body := c.call(t, "POST", "/v1/nodes", map[string]any{"driver": "fake-hardware", "name": "over-tls"}); code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	if code, _ := c.call(t, "GET", "/v1/nodes/over-tls", nil); code != 200 {
		t.Fatalf("get: %d", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	err := service.Run(ctx, service.Config{APIListen: "127.0.0.1:0", StateDir: t.TempDir(), Hostname: "tls-b",
		EtcdEndpoints: []string{srv.Endpoint}, EtcdPrefix: "/tls", EtcdCACert: certs.CA})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("conductor without a client certificate: Run = %v after %s, want a start error", err, time.Since(start))
	}
	t.Logf("without a client certificate: %v (after %s)", err, time.Since(start).Round(time.Millisecond))
}
