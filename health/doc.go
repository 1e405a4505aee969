// Package health samples the resources a node lives on and turns them into a
// pressure level that other components react to.
//
// The model: a Monitor takes a Sample every Interval from a Source (the
// default, NewSystemSource, reads the process and the host through gopsutil
// v4 and the Go runtime through runtime/metrics). Each sample yields a
// usage ratio per limited resource: memory (RSS against the configured
// budget, the cgroup limit and the host's available memory), open file
// descriptors against RLIMIT_NOFILE, and free space on each configured disk
// path. A Holt linear-trend forecaster per resource gives the time until the
// limit is reached. The highest current ratio of memory and fds drives a
// three-level pressure state (Normal, Elevated, Critical) with hysteresis: separate enter and exit
// thresholds and a minimum dwell before stepping down, so the level does not
// flap. Disks warn (and are forecast) but do not move the level: shedding
// work frees no disk space. A forecast memory or fd exhaustion within the
// Horizon raises a warning and holds the level at Elevated at least. A reading that cannot be taken (no cgroup,
// an unsupported platform) is recorded as unknown with the reason and simply
// does not count; sampling never panics.
//
// Components take the level through a small interface (Leveler, or a
// callback given to Subscribe), never the Monitor itself:
//
//	m, err := health.New(health.NewSystemSource([]string{repoPath}), health.WithMemoryBudget(4<<30))
//	defer m.Close()
//	cancel := m.Subscribe(func(l health.Level) { shed(l >= health.Elevated) })
package health
