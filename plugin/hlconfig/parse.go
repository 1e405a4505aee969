package hlconfig

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	kconfig "github.com/ipfs/kubo/config"
)

// ErrPrefix starts every error message of this package, so that a user who
// sees it in `ipfs` output knows which plugin refused the config.
const ErrPrefix = "highload: "

// RootPath is the name of the plugin config's root in key paths.
const RootPath = "Config"

var (
	typeFlag     = reflect.TypeOf(kconfig.Flag(0))
	typeInteger  = reflect.TypeOf((*kconfig.OptionalInteger)(nil))
	typeBytes    = reflect.TypeOf((*kconfig.OptionalBytes)(nil))
	typeDuration = reflect.TypeOf((*kconfig.OptionalDuration)(nil))
	typeString   = reflect.TypeOf((*kconfig.OptionalString)(nil))
	typeStrings  = reflect.TypeOf([]string(nil))
	ourPkgPath   = reflect.TypeOf(Config{}).PkgPath()
)

// Parse decodes the plugin's raw config (the JSON value Kubo's loader hands
// to Init; nil when the key is absent) into a Config. It refuses unknown
// keys, wrong types and out-of-range values; the returned error lists every
// problem found, one per line, each naming its full key path. Parse never
// panics, whatever the input.
func Parse(raw any) (*Config, error) {
	cfg := &Config{}
	if raw == nil {
		return cfg, nil
	}
	var errs []error
	decodeSection(reflect.ValueOf(cfg).Elem(), raw, RootPath, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

func fieldErr(path, format string, args ...any) error {
	return fmt.Errorf(ErrPrefix+path+": "+format, args...)
}

// isSection reports whether t is a pointer to one of this package's section
// structs (as opposed to one of Kubo's Optional leaf types).
func isSection(t reflect.Type) bool {
	return t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct && t.Elem().PkgPath() == ourPkgPath
}

func decodeSection(v reflect.Value, raw any, path string, errs *[]error) {
	m, ok := raw.(map[string]any)
	if !ok {
		*errs = append(*errs, fieldErr(path, "expected an object of settings, got %s", describe(raw)))
		return
	}
	t := v.Type()
	names := make([]string, 0, t.NumField())
	index := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		names = append(names, t.Field(i).Name)
		index[t.Field(i).Name] = i
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		p := path + "." + key
		i, ok := index[key]
		if !ok {
			msg := "unknown key"
			if s := suggest(key, names); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			} else {
				msg += fmt.Sprintf("; accepted keys: %s", strings.Join(names, ", "))
			}
			*errs = append(*errs, fieldErr(p, "%s", msg))
			continue
		}
		f := t.Field(i)
		val := m[key]
		if isSection(f.Type) {
			if val == nil {
				continue
			}
			sec := reflect.New(f.Type.Elem())
			decodeSection(sec.Elem(), val, p, errs)
			v.Field(i).Set(sec)
			continue
		}
		if err := decodeLeaf(v.Field(i), f, val, p); err != nil {
			*errs = append(*errs, err)
		}
	}
}

// describe renders a raw JSON value for an error message.
func describe(raw any) string {
	switch x := raw.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return fmt.Sprintf("%q", x)
	case float64:
		return formatNumber(x)
	case bool:
		return fmt.Sprint(x)
	default:
		return fmt.Sprintf("a %T", raw)
	}
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprint(f)
}

// decodeLeaf checks raw against the leaf's kind, stores it, and checks the
// range tag.
func decodeLeaf(dst reflect.Value, f reflect.StructField, raw any, path string) error {
	if raw == nil {
		dst.Set(reflect.Zero(f.Type)) // null means "default", as in Kubo.
		return nil
	}
	switch f.Type {
	case typeFlag:
		b, ok := raw.(bool)
		if !ok {
			return fieldErr(path, "%s is not a boolean (use true or false)", describe(raw))
		}
		if b {
			dst.Set(reflect.ValueOf(kconfig.True))
		} else {
			dst.Set(reflect.ValueOf(kconfig.False))
		}
		return nil
	case typeInteger:
		n, ok := raw.(float64)
		if !ok || n != math.Trunc(n) || math.Abs(n) > 1<<53 {
			return fieldErr(path, "%s is not an integer", describe(raw))
		}
		if err := checkRange(f, path, describe(raw), func(lo, hi string) (bool, error) {
			return inIntRange(int64(n), lo, hi)
		}); err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(kconfig.NewOptionalInteger(int64(n))))
		return nil
	case typeBytes:
		var text string
		switch x := raw.(type) {
		case string:
			text = x
		case float64:
			if x < 0 || x != math.Trunc(x) || x > 1<<53 {
				return fieldErr(path, "%s is not a size (e.g. \"1MiB\")", describe(raw))
			}
			text = formatNumber(x)
		default:
			return fieldErr(path, "%s is not a size (e.g. \"1MiB\")", describe(raw))
		}
		n, err := humanize.ParseBytes(text)
		if err != nil {
			return fieldErr(path, "%s is not a size (e.g. \"1MiB\")", describe(raw))
		}
		if err := checkRange(f, path, describe(raw), func(lo, hi string) (bool, error) {
			return inBytesRange(n, lo, hi)
		}); err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(kconfig.NewOptionalBytes(text)))
		return nil
	case typeDuration:
		s, ok := raw.(string)
		var d time.Duration
		var err error
		if ok {
			d, err = time.ParseDuration(s)
		}
		if !ok || err != nil {
			return fieldErr(path, "%s is not a duration (e.g. \"10s\", \"1m30s\")", describe(raw))
		}
		if err := checkRange(f, path, describe(raw), func(lo, hi string) (bool, error) {
			return inDurationRange(d, lo, hi)
		}); err != nil {
			return err
		}
		dst.Set(reflect.ValueOf(kconfig.NewOptionalDuration(d)))
		return nil
	case typeString:
		s, ok := raw.(string)
		if !ok {
			return fieldErr(path, "%s is not a string", describe(raw))
		}
		dst.Set(reflect.ValueOf(kconfig.NewOptionalString(s)))
		return nil
	case typeStrings:
		list, ok := raw.([]any)
		if !ok {
			return fieldErr(path, "%s is not a list of strings (e.g. [\"a\", \"b\"])", describe(raw))
		}
		out := make([]string, 0, len(list))
		for i, item := range list {
			s, ok := item.(string)
			if !ok {
				return fieldErr(fmt.Sprintf("%s[%d]", path, i), "%s is not a string", describe(item))
			}
			out = append(out, s)
		}
		dst.Set(reflect.ValueOf(out))
		return nil
	}
	// A leaf type the walker does not know yet: fall back to JSON, so that
	// adding a field never silently drops it.
	buf, err := json.Marshal(raw)
	if err != nil {
		return fieldErr(path, "%s cannot be read: %v", describe(raw), err)
	}
	ptr := reflect.New(f.Type)
	if err := json.Unmarshal(buf, ptr.Interface()); err != nil {
		return fieldErr(path, "%s is not valid here: %v", describe(raw), err)
	}
	dst.Set(ptr.Elem())
	return nil
}

// checkRange applies the field's range tag through in, which parses the
// bounds for the field's kind.
func checkRange(f reflect.StructField, path, shown string, in func(lo, hi string) (bool, error)) error {
	tag, ok := f.Tag.Lookup("range")
	if !ok {
		return nil
	}
	lo, hi, _ := strings.Cut(tag, ",")
	ok, err := in(lo, hi)
	if err != nil {
		// A broken tag is a programming error; the unit tests catch it.
		return fieldErr(path, "internal error in the accepted range %q: %v", tag, err)
	}
	if !ok {
		return fieldErr(path, "%s is out of range; accepted: %s to %s", shown, lo, hi)
	}
	return nil
}

func inIntRange(n int64, lo, hi string) (bool, error) {
	var l, h int64
	if _, err := fmt.Sscan(lo, &l); err != nil {
		return false, err
	}
	if _, err := fmt.Sscan(hi, &h); err != nil {
		return false, err
	}
	return n >= l && n <= h, nil
}

func inBytesRange(n uint64, lo, hi string) (bool, error) {
	l, err := humanize.ParseBytes(lo)
	if err != nil {
		return false, err
	}
	h, err := humanize.ParseBytes(hi)
	if err != nil {
		return false, err
	}
	return n >= l && n <= h, nil
}

func inDurationRange(d time.Duration, lo, hi string) (bool, error) {
	l, err := time.ParseDuration(lo)
	if err != nil {
		return false, err
	}
	h, err := time.ParseDuration(hi)
	if err != nil {
		return false, err
	}
	return d >= l && d <= h, nil
}
