package elara

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "elara",
		Usage: "project add|list|show|disable|enable|delete [--address <interface>]",
		Short: "Manages Elara projects through the admin API of a running Caddy",
		Long: `
Manages the projects of a running gateway through Caddy's admin endpoint
(/elara/projects). The gateway needs a projects block in its elara option.

  caddy elara project add --name <name> --plan <plan> [--owner <owner>]
  caddy elara project list [--owner <owner>] [--status <status>] [--plan <plan>]
  caddy elara project show <id>
  caddy elara project disable <id>
  caddy elara project enable <id>
  caddy elara project delete <id>

add prints the new project's id and secret. --address is the admin
endpoint, as for caddy reload (default: the config's, or localhost:2019).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.PersistentFlags().String("address", "", "The address of the admin API endpoint, if not the default")
			project := &cobra.Command{Use: "project", Short: "Manages projects"}
			add := &cobra.Command{Use: "add", Short: "Creates a project and prints its id and secret", Args: cobra.NoArgs,
				RunE: func(c *cobra.Command, _ []string) error {
					name, _ := c.Flags().GetString("name")
					owner, _ := c.Flags().GetString("owner")
					plan, _ := c.Flags().GetString("plan")
					body, _ := json.Marshal(map[string]string{"name": name, "owner": owner, "plan": plan})
					var p map[string]any
					if err := adminCall(c, http.MethodPost, "/elara/projects", body, &p); err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "id     %v\nsecret %v\n", p["id"], p["secret"])
					return nil
				}}
			add.Flags().String("name", "", "The project's name (required)")
			add.Flags().String("owner", "", "The customer or team owning it")
			add.Flags().String("plan", "", "The plan whose limits apply (required)")
			_ = add.MarkFlagRequired("name")
			_ = add.MarkFlagRequired("plan")
			list := &cobra.Command{Use: "list", Short: "Lists projects", Args: cobra.NoArgs,
				RunE: func(c *cobra.Command, _ []string) error {
					q := url.Values{}
					for _, f := range []string{"owner", "status", "plan"} {
						if v, _ := c.Flags().GetString(f); v != "" {
							q.Set(f, v)
						}
					}
					uri := "/elara/projects"
					if len(q) > 0 {
						uri += "?" + q.Encode()
					}
					var ps []struct{ ID, Name, Owner, Status, Plan string }
					if err := adminCall(c, http.MethodGet, uri, nil, &ps); err != nil {
						return err
					}
					tw := tabwriter.NewWriter(c.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "ID\tNAME\tOWNER\tSTATUS\tPLAN")
					for _, p := range ps {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.ID, p.Name, p.Owner, p.Status, p.Plan)
					}
					return tw.Flush()
				}}
			for _, f := range []string{"owner", "status", "plan"} {
				list.Flags().String(f, "", "Only projects with this "+f)
			}
			show := &cobra.Command{Use: "show <id>", Short: "Shows a project and today's usage", Args: cobra.ExactArgs(1),
				RunE: func(c *cobra.Command, args []string) error {
					var p, u json.RawMessage
					if err := adminCall(c, http.MethodGet, "/elara/projects/"+args[0], nil, &p); err != nil {
						return err
					}
					if err := adminCall(c, http.MethodGet, "/elara/projects/"+args[0]+"/usage", nil, &u); err != nil {
						return err
					}
					out, _ := json.MarshalIndent(map[string]json.RawMessage{"project": p, "usage": u}, "", "  ")
					fmt.Fprintln(c.OutOrStdout(), string(out))
					return nil
				}}
			setStatus := func(use, status string) *cobra.Command {
				return &cobra.Command{Use: use + " <id>", Short: "Sets a project " + status, Args: cobra.ExactArgs(1),
					RunE: func(c *cobra.Command, args []string) error {
						body, _ := json.Marshal(map[string]string{"status": status})
						if err := adminCall(c, http.MethodPatch, "/elara/projects/"+args[0], body, nil); err != nil {
							return err
						}
						fmt.Fprintf(c.OutOrStdout(), "project %s %s\n", args[0], status)
						return nil
					}}
			}
			del := &cobra.Command{Use: "delete <id>", Short: "Deletes a project", Args: cobra.ExactArgs(1),
				RunE: func(c *cobra.Command, args []string) error {
					if err := adminCall(c, http.MethodDelete, "/elara/projects/"+args[0], nil, nil); err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "project %s deleted\n", args[0])
					return nil
				}}
			project.AddCommand(add, list, show, setStatus("disable", "disabled"), setStatus("enable", "active"), del)
			cmd.AddCommand(project)
		},
	})
}

// adminCall sends one request to the admin endpoint and decodes the
// answer into out (nil: ignored); an error answer becomes the error.
func adminCall(c *cobra.Command, method, uri string, body []byte, out any) error {
	flagAddr, _ := c.Flags().GetString("address")
	addr, err := caddycmd.DetermineAdminAPIAddress(flagAddr, nil, "", "")
	if err != nil {
		return err
	}
	var r io.Reader
	hdr := http.Header{}
	if body != nil {
		r = bytes.NewReader(body)
		hdr.Set("Content-Type", "application/json")
	}
	resp, err := caddycmd.AdminAPIRequest(addr, method, uri, hdr, r)
	if err != nil {
		return err // AdminAPIRequest reports error answers with their message
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the answer: %v", err)
	}
	return nil
}
