// Package netfault tests camd's camera supervision against real network
// faults, with real sockets, across network namespaces that the tests create.
//
// Each test builds a small lab: a network namespace (camdtest-XXXXXX), a veth
// pair with one end inside it and a random 10.231.x.y/30 subnet, and "camd
// sim" (the binary built once from ./cmd/camd) serving one simulated camera
// inside the namespace. The supervision core (package device: a Manager with
// short thresholds) runs in the test process on the host side and reads the
// camera over RTSP/TCP. The tests then break the network the way real
// networks break and check how camd's state machine responds:
//
//   - a blackhole: nftables drops the camera's packets both ways; the TCP
//     connection stays ESTABLISHED and silent, and camd must leave RUNNING
//     within the stall threshold + 1 s and recover once the rule goes;
//   - the link goes down and up: RECONNECTING, then RUNNING;
//   - TCP resets: nftables answers camd's packets with RSTs, and camd must be
//     RECONNECTING well before any timeout could have told it.
//
// The kernel is not assumed to have netem: faults are nftables drop and
// reject rules and "ip link set down". Traffic only ever goes to the test's
// own namespaces: a host-side nftables table rejects anything for the test
// subnet that would leave by another interface (say, the default route
// while the veth is down).
//
// The tests need root and the programs ip and ss (Debian package iproute2)
// and nft (nftables). Without them they skip, except when CI=true, where
// they fail instead. Every namespace, veth, nftables table and process a test
// creates is removed by t.Cleanup, whether the test passes or not. The
// figures measured (detection and recovery latencies) are reported with
// t.Log; run with -v to see them:
//
//	CGO_ENABLED=1 go test -race -count=1 -v ./test/netfault/
package netfault
