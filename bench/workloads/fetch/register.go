package fetch

import "github.com/kubo-highload/highload/bench/internal/workload"

func init() {
	workload.Register(workload.Workload{
		ID: "W1", Name: "bulk",
		Shape: "1 provider, 1 fetcher, 256 MiB random (quick: 8 MiB), 256 KiB chunks, pin add on the fetcher",
		Run:   runW1,
	})
	workload.Register(workload.Workload{
		ID: "W2", Name: "small-blocks",
		Shape: "1 provider, 1 fetcher, 64 MiB random (quick: 2 MiB), 16 KiB chunks, pin add on the fetcher",
		Run:   runW2,
	})
	workload.Register(workload.Workload{
		ID: "W3", Name: "multi-provider",
		Shape: "3 providers holding the same 256 MiB (quick: 8 MiB), 256 KiB chunks, 1 fetcher connected to all",
		Run:   runW3,
	})
	workload.Register(workload.Workload{
		ID: "W4", Name: "fan-out",
		Shape: "1 provider, 8 fetchers each pinning its own 32 MiB (quick: 1 MiB) at once, 256 KiB chunks",
		Run:   runW4,
	})
	workload.Register(workload.Workload{
		ID: "W10", Name: "stream",
		Shape: "1 provider, 1 fetcher, `cat` of 256 MiB random (quick: 8 MiB), 256 KiB chunks, read in order as a gateway does",
		Run:   runW10,
	})
}
