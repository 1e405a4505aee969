package plugin

func init() { plannedComponent("health", "resource monitor", 10) }
