package plugin

import (
	"fmt"

	kconfig "github.com/ipfs/kubo/config"

	"github.com/kubo-highload/highload/plugin/hlconfig"
)

// ProfileName is the init profile: `ipfs init --profile=highload` or
// `ipfs config profile apply highload`.
const ProfileName = "highload"

func init() {
	kconfig.Profiles[ProfileName] = kconfig.Profile{
		Description: `Enables the highload plugin and writes its config with every
knob at its default (Plugins.Plugins.highload.Config), so it can be seen
and edited. Values already set there are kept.`,
		Transform: applyProfile,
	}
}

// applyProfile enables the plugin and fills every absent knob with its
// default, keeping the values a user already set. An invalid existing config
// is refused rather than overwritten.
func applyProfile(c *kconfig.Config) error {
	if c.Plugins.Plugins == nil {
		c.Plugins.Plugins = map[string]kconfig.Plugin{}
	}
	cur := c.Plugins.Plugins[Name]
	parsed, err := hlconfig.Parse(cur.Config)
	if err != nil {
		return fmt.Errorf("profile %s: the existing config is invalid, fix it first: %w", ProfileName, err)
	}
	m, err := parsed.Resolved().ToMap()
	if err != nil {
		return err
	}
	c.Plugins.Plugins[Name] = kconfig.Plugin{Disabled: false, Config: m}
	for _, step := range profileSteps {
		if err := step.apply(c); err != nil {
			return fmt.Errorf("profile %s: %s: %w", ProfileName, step.name, err)
		}
	}
	return nil
}

// profileStep is one component's part of the highload profile (the tiered
// datastore spec, a provide policy, ...). Each lives in its component's file
// and registers itself from init() with addProfileStep.
type profileStep struct {
	name  string
	apply func(*kconfig.Config) error
}

var profileSteps []profileStep

// addProfileStep appends a step to the highload profile. Steps run in
// registration order, after the plugin's own config has been written, and
// must keep values the user already set where that makes sense.
func addProfileStep(name string, apply func(*kconfig.Config) error) {
	profileSteps = append(profileSteps, profileStep{name: name, apply: apply})
}
