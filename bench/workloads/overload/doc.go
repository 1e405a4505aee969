// Package overload holds the workloads that need a load generator speaking
// libp2p and Bitswap: W5 (wantlist flood against a priority fetch), W7
// (many concurrent connections) and W8 (want-have request rate). Importing it
// registers the workloads.
package overload
