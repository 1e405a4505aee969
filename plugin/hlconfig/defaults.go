package hlconfig

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	kconfig "github.com/ipfs/kubo/config"
)

// Resolved returns a deep copy of c in which every absent section and leaf
// holds its default (from the default tag). Every Optional in the result is
// set, so WithDefault's argument is never used on it.
func (c *Config) Resolved() *Config {
	out := &Config{}
	if c != nil {
		// The copy goes through JSON: the Optional types hide their fields.
		buf, err := json.Marshal(c)
		if err == nil {
			_ = json.Unmarshal(buf, out)
		}
	}
	fillDefaults(reflect.ValueOf(out).Elem())
	return out
}

func fillDefaults(v reflect.Value) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		if isSection(f.Type) {
			if fv.IsNil() {
				fv.Set(reflect.New(f.Type.Elem()))
			}
			fillDefaults(fv.Elem())
			continue
		}
		def, ok := f.Tag.Lookup("default")
		if !ok {
			continue
		}
		switch f.Type {
		case typeFlag:
			if fv.Interface().(kconfig.Flag) == kconfig.Default {
				fv.Set(reflect.ValueOf(flagOf(def == "true")))
			}
		case typeInteger:
			if fv.IsNil() || fv.Interface().(*kconfig.OptionalInteger).IsDefault() {
				n, _ := strconv.ParseInt(def, 10, 64)
				fv.Set(reflect.ValueOf(kconfig.NewOptionalInteger(n)))
			}
		case typeBytes:
			if fv.IsNil() || fv.Interface().(*kconfig.OptionalBytes).IsDefault() {
				fv.Set(reflect.ValueOf(kconfig.NewOptionalBytes(def)))
			}
		case typeDuration:
			if fv.IsNil() || fv.Interface().(*kconfig.OptionalDuration).IsDefault() {
				d, _ := time.ParseDuration(def)
				fv.Set(reflect.ValueOf(kconfig.NewOptionalDuration(d)))
			}
		case typeString:
			if fv.IsNil() || fv.Interface().(*kconfig.OptionalString).IsDefault() {
				fv.Set(reflect.ValueOf(kconfig.NewOptionalString(def)))
			}
		case typeStrings:
			if fv.IsNil() {
				fv.Set(reflect.ValueOf(splitList(def)))
			}
		}
	}
}

// splitList parses a string list's default tag: comma-separated, "" for an
// empty (not null) list.
func splitList(def string) []string {
	out := []string{}
	for _, s := range strings.Split(def, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func flagOf(b bool) kconfig.Flag {
	if b {
		return kconfig.True
	}
	return kconfig.False
}

// DefaultMap returns the fully resolved default config as the JSON-shaped
// value Kubo stores in Plugins.Plugins.highload.Config. The highload init
// profile writes it, so that users see and can edit every knob.
func DefaultMap() (map[string]any, error) {
	return (&Config{}).Resolved().ToMap()
}

// ToMap renders c as the JSON-shaped map Kubo keeps in its config file.
func (c *Config) ToMap() (map[string]any, error) {
	buf, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf(ErrPrefix+"encoding config: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(buf, &m); err != nil {
		return nil, fmt.Errorf(ErrPrefix+"encoding config: %w", err)
	}
	return m, nil
}

// Field describes one leaf of the schema, for docs and stats output.
type Field struct {
	// Path is the key path, e.g. "Config.Bitswap.TaskWorkerCount".
	Path string
	// Kind is "flag", "integer", "size", "duration", "string" or "string list".
	Kind string
	// Value is the value in this config, rendered as in the JSON file.
	Value string
	// Default is the default from the schema.
	Default string
	// Range is "lo to hi", or "" when any value of the kind is accepted.
	Range string
	// Doc is the one-line description.
	Doc string
}

// Fields lists every leaf of c's schema in declaration order, with c's
// values (resolve c first to see effective values).
func (c *Config) Fields() []Field {
	if c == nil {
		c = &Config{}
	}
	var out []Field
	collectFields(reflect.ValueOf(c).Elem(), RootPath, &out)
	return out
}

func collectFields(v reflect.Value, path string, out *[]Field) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f, fv := t.Field(i), v.Field(i)
		p := path + "." + f.Name
		if isSection(f.Type) {
			if fv.IsNil() {
				fv = reflect.New(f.Type.Elem())
			}
			collectFields(fv.Elem(), p, out)
			continue
		}
		fd := Field{Path: p, Kind: kindName(f.Type), Default: f.Tag.Get("default"), Doc: f.Tag.Get("doc")}
		if f.Type == typeStrings {
			fd.Default = "[" + strings.Join(splitList(fd.Default), ", ") + "]"
		}
		if r, ok := f.Tag.Lookup("range"); ok {
			lo, hi, _ := cutComma(r)
			fd.Range = lo + " to " + hi
		}
		fd.Value = "default"
		if !(fv.Kind() == reflect.Pointer && fv.IsNil()) {
			if s, ok := fv.Interface().(fmt.Stringer); ok {
				fd.Value = s.String()
			} else if l, ok := fv.Interface().([]string); ok {
				fd.Value = "[" + strings.Join(l, ", ") + "]"
			}
		}
		*out = append(*out, fd)
	}
}

func cutComma(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

func kindName(t reflect.Type) string {
	switch t {
	case typeFlag:
		return "flag"
	case typeInteger:
		return "integer"
	case typeBytes:
		return "size"
	case typeDuration:
		return "duration"
	case typeString:
		return "string"
	case typeStrings:
		return "string list"
	}
	return t.String()
}
