package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/wps-bridge/bridge/internal/config"
)

func newValidateCmd(a *app) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a configuration file and list every problem",
		Long: `validate loads the configuration file with the current environment (for
${VAR} references), applies the defaults and checks it, including that every
*File key names a readable file. It prints every problem, one per line as
"file: path: problem", and exits non-zero; or "config OK".`,
		Example: `  bridge validate -c bridge.yaml
  WEBPUBSUB_CONNECTION_STRING='Endpoint=…' bridge validate -c /etc/bridge/bridge.yaml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := config.Load(path)
			problems := config.FieldErrors(err)
			switch {
			case err == nil:
				_, err := fmt.Fprintln(a.stdout, "config OK")
				return err
			case len(problems) == 0:
				return err // unreadable file or YAML syntax: one problem, printed by run
			}
			for _, p := range problems {
				if _, err := fmt.Fprintf(a.stdout, "%s: %s\n", path, p); err != nil {
					return err
				}
			}
			return fmt.Errorf("%s: %d problem%s", path, len(problems), plural(len(problems)))
		},
	}
	addConfigFlag(cmd, &path)
	return cmd
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
