package plugin

func init() { plannedComponent("autotune", "tuner", 90) }
