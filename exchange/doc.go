// Package exchange is an adaptive policy for boxo's Bitswap server: request
// classes with guaranteed minimum shares, live per-peer limits computed from
// measured load, and circuit breakers that shed abusive peers (and, when the
// node is overloaded, whole low classes) with DONT_HAVE.
//
// # Model
//
// Every remote peer falls in one [Class], highest first: [ClassPriority]
// (peers we are peered or clustered with, set by [Policy.SetPriorityPeers]),
// [ClassGood] (peers with a good exchange record: they fetched blocks we
// hold, or gave us blocks, and have not tripped their breaker) and
// [ClassUnknown]. The class is read from atomically swapped state on every
// call.
//
// boxo runs three hooks per request, and the policy implements each:
//
//   - [Policy.Filter] is a server.PeerBlockRequestFilter, called once per
//     wanted CID as a message is parsed. A denied want is answered with
//     DONT_HAVE and costs no blockstore lookup. The filter counts the
//     peer's request rate, consults the peer's breaker, the global breaker of
//     the peer's class and the peer's pending-entry limit.
//   - [Policy.Compare] is a server.TaskComparator. It is weighted fair
//     queuing over virtual time: each class has a weight (Config.MinShare,
//     in percent; priority 80, good 10, unknown 10 by default), and while a
//     class has work queued it gets at least that share of the entries the
//     server sends, whatever the other classes do. Inside a class, peers
//     take turns. Only a peer's own service moves its key, so boxo's peer
//     heap stays valid (see comparator.go).
//   - [Policy.MessageReceived] and [Policy.MessageSent] make the policy a
//     tracer.Tracer: they measure what peers ask (malformed or oversized
//     wantlists count as faults) and what the server sends (service per
//     class and per peer, and pending entries per peer).
//
// A background loop (every Config.Tick) sums pending entries per class,
// reads the pressure level from [WithPressure], computes a load figure and
// from it the live limits: per-peer rate and pending limits shrink as load
// grows, and the global breakers shed the unknown class first, then the
// good class. The priority class is never shed by the global breakers.
//
// A [Breaker] is closed (all admitted), open (all denied for a cooldown
// that doubles on each re-trip) or half-open (a fraction of requests is
// admitted, doubling each ramp interval until the breaker closes).
//
// The policy's limits are live [Knob]s (plain data over atomics) for a
// tuner, and its state is one [Stats] snapshot; [NewCollector] exposes it as
// highload_bitswap_* Prometheus metrics.
//
// On the client side, [PrefetchExchange] wraps a session exchange so each
// session asks for the small dag-pb links of the nodes the caller descends
// into ahead of the caller (up to a width in flight and [PrefetchBytes]
// ahead; runs of large siblings only for a caller that reads them in
// runs, as the DAG reader does) and hands them to the
// caller's GetBlock from memory: a DAG walk that asks 32 blocks at a time
// becomes a walk with hundreds in flight, and each block is still fetched,
// stored (by the caller's blockservice) and announced once. With
// [DirectWants] the prefetcher's wants skip boxo's session and its 20 ms
// message cadence: each goes as a want-block straight to the peer that
// sent its parent node, on a stream of its own, and the answers come back
// through Bitswap's tracers (the client's notes who sent each node, the
// server's, called last, delivers); a DONT_HAVE, a timeout or a failed
// send hands the want back to boxo's session.
//
// What the policy cannot change: worker counts, message size, the
// per-peer outstanding-bytes cap and the client's send delay are fixed when
// boxo builds Bitswap, so the caller sets them as options.
//
//	p := exchange.New(exchange.DefaultConfig())
//	defer p.Close()
//	d := exchange.NewDirectWants()
//	bs := bitswap.New(ctx, net, pf, bstore, bitswap.WithPeerBlockRequestFilter(p.Filter),
//		bitswap.WithTaskComparator(p.Compare),
//		bitswap.WithClientOption(client.WithTracer(exchange.Tracers(p, d.Senders()))),
//		bitswap.WithServerOption(server.WithTracer(exchange.SplitTracer(d, p))))
//	d.Attach()
//	d.Start(ctx, h)
//	px := exchange.NewPrefetchExchange(bs, bstore, 256, d)
package exchange
