package overload

import "github.com/kubo-highload/highload/bench/internal/workload"

func init() {
	workload.Register(workload.Workload{
		ID:    "W5",
		Name:  "overload",
		Shape: "1 provider, 1 peered fetcher pulls 64 MiB (256 KiB chunks) idle, then under 32 peers x 1,000 missing wants x 10/s",
		Run:   runW5,
	})
	workload.Register(workload.Workload{
		ID:    "W7",
		Name:  "connections",
		Shape: "10,000 inbound connections held 60 s (ConnMgr 9,000/11,000, fd limit raised); then 2,000 with Kubo's defaults for 30 s",
		Run:   runW7,
	})
	workload.Register(workload.Workload{
		ID:    "W8",
		Name:  "request-rate",
		Shape: "want-have for 1,007 held blocks from 1-64 peers x 32 in flight, 5 s per step",
		Run:   runW8,
	})
}
