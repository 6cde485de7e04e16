// Command render-config renders Temporal's docker/config_template.yaml (the file the temporalio/server image renders
// at start) from the environment, with the template functions that image's renderer provides (default, lower, split,
// trim), so the local production layout runs the configuration the image would run given the same variables.
//
//	render-config TEMPLATE OUTPUT
package main

import (
	"fmt"
	"os"
	"strings"
	"text/template"
)

// defaultValue returns the first argument unless it is missing or empty, else the second: `default .Env.X "4"`.
func defaultValue(args ...interface{}) (interface{}, error) {
	if len(args) != 2 {
		return nil, fmt.Errorf("default takes a value and a default, got %d arguments", len(args))
	}
	if args[0] == nil {
		return args[1], nil
	}
	if s, ok := args[0].(string); ok && s == "" {
		return args[1], nil
	}
	return args[0], nil
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: render-config TEMPLATE OUTPUT")
		os.Exit(2)
	}
	text, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	funcs := template.FuncMap{
		"default": defaultValue,
		"lower":   strings.ToLower,
		"split":   strings.Split,
		"trim":    strings.TrimSpace,
	}
	// Missing keys read as empty, as in the image's renderer.
	tpl, err := template.New("config").Funcs(funcs).Parse(string(text))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var out strings.Builder
	if err := tpl.Execute(&out, map[string]interface{}{"Env": env}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[2], []byte(out.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
