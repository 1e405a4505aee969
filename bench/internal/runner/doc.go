// Package runner runs benchmark workloads for two variants, stock Kubo and
// ours, and turns the rounds into a report: a markdown table, JSON with every
// raw figure, and a PNG chart of the ratios.
//
// The model: for each workload, for each round, the runner runs the stock
// variant and then the highload variant (A B A B ...), each in a fresh
// temporary directory that is removed afterwards. A round that fails is
// recorded and the run goes on. Each figure is summarised per variant
// (median, min, max over rounds) and the two variants are compared pair by
// pair: round i of highload divided by round i of stock, whose median, min
// and max are the reported ratio. A figure only one variant reports is shown
// without a ratio.
//
//	res := runner.Run(ctx, runner.Options{Workloads: ws, Stock: s, Highload: h, Rounds: 5})
//	fmt.Print(res.Markdown())
//	err := res.WriteFiles("bench/results")
package runner
