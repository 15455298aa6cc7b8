package integration

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkSwarmScaleToFirst200 measures convergence on a Swarm: from `docker service scale`
// returning to the new task's first 200 through the gateway (nginx), with the default poll
// interval and the polls that service events trigger.
// Run it with a fixed count: go test -run '^$' -bench SwarmScaleToFirst200 -benchtime 10x ./integration/
func BenchmarkSwarmScaleToFirst200(b *testing.B) {
	g := newGateway(b, "nginx", false, "--wait", "100ms:1s")
	h := g.host("shop")
	g.service("shop", "--network", g.edge, "--replicas", "1", "--label", "VIRTUAL_HOST="+h)
	known := g.waitReplicas(h, 1)
	var took []time.Duration
	n := 1
	for b.Loop() {
		n++
		t0 := time.Now()
		g.docker("service", "scale", "--detach", fmt.Sprintf("%s=%d", g.name("shop"), n))
		for {
			_, body := g.get(h, "/")
			if id := field(body, "id"); id != "" && known[id] == 0 {
				known[id] = 1
				break
			}
			if time.Since(t0) > 60*time.Second {
				b.Fatalf("replica %d never answered", n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		took = append(took, time.Since(t0))
	}
	b.ReportMetric(ms(median(took)), "ms-median-scale-to-200")
	b.ReportMetric(ms(slices.Max(took)), "ms-max-scale-to-200")
}

// BenchmarkSwarmPollCost counts the Docker API requests of one poll with 10 services of 3 tasks
// each: one service list and one task list, whatever the number of tasks; nodes are cached.
// Run it: go test -run '^$' -bench SwarmPollCost -benchtime 1x ./integration/
func BenchmarkSwarmPollCost(b *testing.B) {
	g := newGateway(b, "nginx", false, "--swarm-poll", "500ms")
	for i := range 10 {
		g.service(fmt.Sprintf("s%d", i), "--network", g.edge, "--replicas", "3", "--label", "VIRTUAL_HOST="+g.host(fmt.Sprintf("s%d", i)))
	}
	g.waitFor("30 tasks routed", func() error {
		n := 0
		for _, s := range g.routes().Sites {
			for _, r := range s.Routes {
				n += len(r.Backend.Servers)
			}
		}
		if n != 30 {
			return fmt.Errorf("%d servers", n)
		}
		return nil
	})
	for b.Loop() {
		count := func(op string) float64 { return g.metric("vhostgen_docker_api_requests_total", `op="`+op+`"`) }
		s0, t0, n0, i0 := count("get_services"), count("get_tasks"), count("get_nodes"), count("container_inspect")
		time.Sleep(10 * time.Second) // about 20 polls, no events
		polls := count("get_services") - s0
		if polls < 5 {
			b.Fatalf("only %v polls in 10 s", polls)
		}
		perPoll := (count("get_services") - s0 + count("get_tasks") - t0 + count("get_nodes") - n0 + count("container_inspect") - i0) / polls
		b.ReportMetric(polls, "polls")
		b.ReportMetric(perPoll, "api-requests/poll")
		b.Logf("10 services x 3 tasks: %v polls, %.2f Docker API requests per poll (services %v, tasks %v, nodes %v, inspects %v)",
			polls, perPoll, polls, count("get_tasks")-t0, count("get_nodes")-n0, count("container_inspect")-i0)
	}
}
