package plugin

func init() { plannedComponent("connmgr", "adaptive connection manager", 50) }
